"""`jest` and `jest_independent`: JEST joint example selection by learnability."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from batchcraft.errors import ConfigError
from batchcraft.selectors.base import BaseSelector, MissingColumnsError, Selection, check_range
from batchcraft.selectors.hardware import Device, Precision, torch_device, uses_bf16
from batchcraft.selectors.jest_scoring import (
    LearnabilityScorer,
    SigmoidLossParameters,
    joint_sample,
)
from batchcraft.selectors.pool import Pool

PAIRWISE_COLUMNS = frozenset(
    {"embeddings", "pair_embeddings", "learner_embeddings", "learner_pair_embeddings"}
)
PER_EXAMPLE_COLUMNS = frozenset({"learner_losses", "reference_losses"})


@dataclass(frozen=True)
class _LearnabilityScoring(BaseSelector):
    """Parameters and scoring shared by `jest` and `jest_independent`."""

    filter_ratio: float = 0.8
    scoring: Literal["auto", "pairwise", "per_example"] = "auto"
    learner_logit_scale: float = 10.0
    learner_logit_bias: float = -10.0
    reference_logit_scale: float = 10.0
    reference_logit_bias: float = -10.0
    temperature: float = 1.0
    device: Device = "auto"
    precision: Precision = "auto"

    def __post_init__(self) -> None:
        super().__post_init__()  # types, and scoring one of its Literal's values
        check_range("filter_ratio", self.filter_ratio, 0.0, 1.0, high_inclusive=False)
        check_range("temperature", self.temperature, 0.0, float("inf"), low_inclusive=False)
        for name in ("learner_logit_scale", "reference_logit_scale"):
            check_range(name, getattr(self, name), 0.0, float("inf"), low_inclusive=False)

    @property
    def required_columns(self) -> frozenset[str]:
        return {
            "auto": frozenset(),
            "pairwise": PAIRWISE_COLUMNS,
            "per_example": PER_EXAMPLE_COLUMNS,
        }[self.scoring]

    @property
    def optional_columns(self) -> frozenset[str]:
        extras = {"learner_logit_scale", "learner_logit_bias"}
        return frozenset(PAIRWISE_COLUMNS | PER_EXAMPLE_COLUMNS | extras) - self.required_columns

    @property
    def pool_factor(self) -> float:
        return 1.0 / (1.0 - self.filter_ratio)

    def check_columns(self, present: frozenset[str]) -> None:
        if self.scoring != "auto":
            super().check_columns(present)
        elif not (PAIRWISE_COLUMNS.issubset(present) or PER_EXAMPLE_COLUMNS.issubset(present)):
            raise MissingColumnsError(
                self.name,
                [
                    *sorted(PAIRWISE_COLUMNS - present),
                    f"(or per-example {sorted(PER_EXAMPLE_COLUMNS - present)})",
                ],
                sorted(present),
            )

    def columns_used(self, present: frozenset[str]) -> frozenset[str]:
        """Only the columns of the scoring ``present`` allows (pairwise ones are wide)."""
        scoring = self._scoring_for(present)
        columns = {"pairwise": PAIRWISE_COLUMNS, "per_example": PER_EXAMPLE_COLUMNS}.get(
            scoring or "", PAIRWISE_COLUMNS | PER_EXAMPLE_COLUMNS
        )
        return (columns | {"learner_logit_scale", "learner_logit_bias"}) & present

    def _resolve_scoring(self, pool: Pool) -> str | None:
        return self._scoring_for(pool.present_columns())

    def _scoring_for(self, present: frozenset[str]) -> str | None:
        if self.scoring != "auto":
            return self.scoring
        for scoring, columns in (
            ("pairwise", PAIRWISE_COLUMNS),
            ("per_example", PER_EXAMPLE_COLUMNS),
        ):
            if columns <= present:
                return scoring
        return None

    def _scorer(self, pool: Pool) -> tuple[LearnabilityScorer, str]:
        """The learnability scorer for the pool, and the scoring used."""
        scoring = self._resolve_scoring(pool)
        if scoring == "per_example":
            assert pool.learner_losses is not None and pool.reference_losses is not None
            per_example = np.nan_to_num(pool.learner_losses - pool.reference_losses, nan=0.0)
            return LearnabilityScorer(per_example=per_example), scoring
        assert pool.learner_embeddings is not None and pool.learner_pair_embeddings is not None
        assert pool.embeddings is not None and pool.pair_embeddings is not None
        learner_head = SigmoidLossParameters(
            pool.learner_logit_scale or self.learner_logit_scale,
            self.learner_logit_bias if pool.learner_logit_bias is None else pool.learner_logit_bias,
        )
        reference_head = SigmoidLossParameters(
            self.reference_logit_scale, self.reference_logit_bias
        )
        towers = (
            pool.learner_embeddings,
            pool.learner_pair_embeddings,
            pool.embeddings,
            pool.pair_embeddings,
        )
        device = torch_device(self.device)
        scorer = LearnabilityScorer(
            towers,
            (learner_head, reference_head),
            None,
            device,
            uses_bf16(self.precision, device, matmul_width=pool.embeddings.shape[1]),
        )
        return scorer, "pairwise"

    def _info(
        self, scorer: LearnabilityScorer, indices: np.ndarray, scoring: str, joint: bool
    ) -> dict[str, Any]:
        diagonal = scorer.diagonal()
        info: dict[str, Any] = {
            "selector": self.name,
            "scoring": scoring,
            "joint": joint,
            "batch_learnability": scorer.sub_batch_learnability(indices),
            "mean_example_learnability": float(diagonal[indices].mean()),
            "pool_mean_example_learnability": float(diagonal.mean()),
        }
        if scoring == "per_example":
            info["note"] = "per-example losses only: independent (RHO-LOSS-like) selection"
        return info


@dataclass(frozen=True)
class JestSelector(_LearnabilityScoring):
    """Joint example selection by learnability over a super-batch (JEST).

    JEST (Evans et al., "Data curation via joint example selection further
    accelerates multimodal learning", 2024): for a super-batch of
    ``B = b / (1 − filter_ratio)`` rows, build the B×B matrices of pairwise
    SigLIP sigmoid-loss terms for the learner and for a reference model
    (the curated dataset's stored embeddings), ``S = L_learner − L_reference``,
    and draw the batch in ``num_chunks`` chunks, each ∝ softmax of the
    conditional learnability given the rows already drawn.

    Columns: ``embeddings``, ``pair_embeddings`` (the reference's towers),
    ``learner_embeddings``, ``learner_pair_embeddings``; or, per-example only,
    ``learner_losses`` and ``reference_losses``.

    Needs from the trainer, per super-batch row: ``learner_embeddings`` and
    ``learner_pair_embeddings`` (both towers; synchronous: scored on the current
    learner just before selection; asynchronous: the latest reported, NaN rows
    for never-scored rows, which then count as zero learnability), plus the
    learner's ``learner_logit_scale``/``learner_logit_bias`` (pool-level;
    defaults are the selector's). The reference is ``embeddings`` and
    ``pair_embeddings``. With only ``learner_losses`` and ``reference_losses``
    the selection is independent (RHO-LOSS-like), reported in ``info``.

    ``device`` and ``precision`` say where the pairwise learnability is computed
    (`batchcraft.selectors.hardware`: ``auto`` is the GPU torch sees, and bf16
    products of the towers on GPUs, CPUs with AMX, and AVX-512-BF16 CPUs for towers of
    256-d or wider, which keep the batch learnability within 1% of fp32's); per-example
    scoring is numpy.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> towers = {name: rng.normal(size=(40, 8)) for name in sorted(PAIRWISE_COLUMNS)}
        >>> selection = JestSelector(num_chunks=4).select(Pool(**towers), 8, rng)
        >>> selection.info["joint"], len(selection)
        (True, 8)
    """

    name: ClassVar[str] = "jest"
    num_chunks: int = 16
    first_chunk: Literal["diagonal", "uniform"] = "diagonal"

    def __post_init__(self) -> None:
        super().__post_init__()  # types, and first_chunk one of its Literal's values
        if self.num_chunks < 1:
            raise ConfigError(f"num_chunks={self.num_chunks} must be >= 1")

    def _select(self, pool: Pool, batch_size: int, rng: np.random.Generator) -> Selection:
        scorer, scoring = self._scorer(pool)
        chunks = min(self.num_chunks, batch_size)
        indices = joint_sample(scorer, batch_size, chunks, rng, self.first_chunk, self.temperature)
        info = self._info(scorer, indices, scoring, joint=scoring == "pairwise")
        info["num_chunks"] = chunks
        return Selection(indices, None, info)


@dataclass(frozen=True)
class JestIndependentSelector(_LearnabilityScoring):
    """JEST's ablation: each row scored alone by its learnability ``S_ii`` (no pair terms).

    Same inputs as `JestSelector`; ``method="top_k"`` keeps the most
    learnable rows, ``"softmax"`` samples ∝ softmax(S_ii / temperature)
    without replacement. With per-example losses this is RHO-LOSS-like
    selection (learner loss − reference loss).

    Example:
        >>> pool = Pool(learner_losses=[3.0, 1.0, 2.0], reference_losses=[0.0, 0.0, 1.9])
        >>> JestIndependentSelector().select(pool, 1, np.random.default_rng(0)).indices.tolist()
        [0]
    """

    name: ClassVar[str] = "jest_independent"
    method: Literal["top_k", "softmax"] = "top_k"

    def _select(self, pool: Pool, batch_size: int, rng: np.random.Generator) -> Selection:
        scorer, scoring = self._scorer(pool)
        diagonal = scorer.diagonal()
        if self.method == "softmax":  # Gumbel top-k: sampling without replacement ∝ softmax
            order = np.argsort(-(diagonal / self.temperature + rng.gumbel(size=len(diagonal))))
        else:  # ties broken at random, not by pool position
            order = np.lexsort((rng.random(len(diagonal)), -diagonal))
        indices = order[:batch_size].astype(np.int64)
        return Selection(indices, None, self._info(scorer, indices, scoring, joint=False))
