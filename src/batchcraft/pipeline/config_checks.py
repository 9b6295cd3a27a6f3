"""What a `batchcraft.pipeline.config.CurateConfig` may hold: the allowed values of its
choices, and the checks its construction runs (ranges, choices, columns), each a one-line
`ConfigError` naming the setting."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal, get_args

from batchcraft.dataset.schema import EMBEDDING_DTYPES
from batchcraft.errors import ConfigError
from batchcraft.pipeline.minhash import settings as minhash

if TYPE_CHECKING:  # the config imports this module for its checks
    from batchcraft.pipeline.config import CurateConfig

KeepPolicy = Literal["prototypical", "hardest", "smallest_id"]
KEEP_POLICIES: tuple[KeepPolicy, ...] = get_args(KeepPolicy)
Precision = Literal["auto", "fp32", "bf16", "fp16"]
PRECISIONS: tuple[Precision, ...] = get_args(Precision)
ReferenceScores = Literal["none", "pairs"]
REFERENCE_SCORES: tuple[ReferenceScores, ...] = get_args(ReferenceScores)
NearDedup = Literal["minhash", "none"]
NEAR_DEDUPS: tuple[NearDedup, ...] = get_args(NearDedup)


def check_config(config: CurateConfig) -> None:
    """Raise a ConfigError naming the first setting of ``config`` out of range, not one of
    its choices, or at odds with another."""
    _check_ranges(config)
    _check_choices(config)
    _check_columns(config)


def _check_ranges(config: CurateConfig) -> None:
    _check(0.0 < config.eps < 1.0, f"eps={config.eps} must be in (0, 1)")
    _check(0.0 < config.near_eps <= config.eps, f"near_eps={config.near_eps} must be in (0, eps]")
    for name in ("num_clusters", "num_shards"):  # None: derived from the rows
        value = getattr(config, name)
        _check(value is None or value >= 1, f"{name}={value} must be >= 1")
    for name in ("kmeans_iterations", "kmeans_sample_size", "encode_batch_size",
                 "max_text_bytes", "max_concepts", "reference_negatives"):  # fmt: skip
        _check(getattr(config, name) >= 1, f"{name}={getattr(config, name)} must be >= 1")
    _check(
        -1.0 <= config.concept_threshold <= 1.0,
        f"concept_threshold={config.concept_threshold} must be in [-1, 1]",
    )
    scale, bias = config.reference_logit_scale, config.reference_logit_bias
    _check(
        0.0 < scale < math.inf and math.isfinite(bias),
        f"reference_logit_scale={scale} must be > 0, reference_logit_bias={bias} finite",
    )


def _check_choices(config: CurateConfig) -> None:
    check_keep_policy(config.keep_policy)
    _check(
        config.near_dedup in NEAR_DEDUPS,
        f"near_dedup={config.near_dedup!r} must be one of {', '.join(NEAR_DEDUPS)}",
    )
    minhash.MinhashSettings.from_config(config)  # its ranges, and bands that fit the budget
    _check(
        config.precision in PRECISIONS,
        f"precision={config.precision!r} must be one of {', '.join(PRECISIONS)}",
    )
    _check(
        config.embedding_dtype in EMBEDDING_DTYPES,
        f"embedding_dtype={config.embedding_dtype!r} must be float32 or float16",
    )
    _check(
        not (config.concept_column and config.concepts_file),
        "give either concept_column or concepts_file, not both",
    )
    _check(
        not (config.concepts_file and config.embedding_column),
        "zero-shot concepts (concepts_file) embed the concept names with the model, which "
        "cannot match precomputed vectors (embedding_column): give a concept_column instead",
    )


def _check_columns(config: CurateConfig) -> None:
    _check(
        config.reference_scores in REFERENCE_SCORES,
        f"reference_scores={config.reference_scores!r} must be one of {', '.join(REFERENCE_SCORES)}",
    )
    _check(
        not (config.ref_loss_column and config.reference_scores == "pairs"),
        "give either ref_loss_column (reference losses from the input) or "
        "reference_scores='pairs' (computed from the pair embeddings), not both",
    )
    _check(
        config.reference_scores != "pairs"
        or bool(config.pair_column and not config.embedding_column),
        "reference_scores='pairs' scores each text against its pair, both embedded by the "
        "model: it needs a pair_column and no embedding_column",
    )
    for key in type(config).read_column_keys():
        _check(
            getattr(config, key) not in config.drop_columns,
            f"drop_columns names {getattr(config, key)!r}, which the job reads as {key}",
        )


def check_keep_policy(keep_policy: str) -> None:
    """Raise ConfigError for an unknown policy (a typo must not change which row survives)."""
    _check(
        keep_policy in KEEP_POLICIES,
        f"keep_policy={keep_policy!r} must be one of {', '.join(KEEP_POLICIES)}",
    )


def column_names(columns: str | Sequence[str]) -> tuple[str, ...]:
    """``drop_columns`` as a tuple of names: a string is split at its commas."""
    names = columns.split(",") if isinstance(columns, str) else list(columns)
    stripped = tuple(str(name).strip() for name in names)
    if any(not name for name in stripped):
        raise ConfigError(f"drop_columns={list(names)} holds an empty column name")
    return stripped


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)
