"""Validated parameters of a job (shared by its ranks) and of one rank's stream."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from batchcraft.batcher.order import LAST_BATCH_RULES, LastBatch
from batchcraft.errors import ConfigError, truncated_repr

ScoringMode = Literal["async", "sync", "ahead"]
SCORING_MODES: tuple[str, ...] = ("async", "sync", "ahead")
MAX_BATCH_SIZE = 1 << 20

DEFAULT_DEPTH = 8
"""Steps a look-ahead selects ahead of a job's latest request (`batchcraft.batcher.lookahead`)."""
DEFAULT_STALENESS = 0
"""Steps a feedback selector may select ahead once it has feedback (its selection then
misses the feedback reported during those steps). 0: on demand, because a JEST selection
(about half a millisecond) costs less than handing its pool's feedback to a worker: on 2
cores shared with the trainer, 2 steps ahead served 0.83x the batches/s of on demand."""
SCORE_AHEAD_STEPS = 2
"""Steps ahead of its selection that a scoring round of ``scoring="ahead"`` is sent: the
trainer scores step s + 2's candidates between its steps s - 1 and s, so its scores are
two optimiser steps old when they are used, and no step waits for a round trip."""


@dataclass(frozen=True, order=True)
class Position:
    """A global step of a job: ``step`` of ``epoch`` (ordered by epoch, then step)."""

    epoch: int = 0
    step: int = 0

    def __post_init__(self) -> None:
        if self.epoch < 0 or self.step < 0:
            raise ConfigError(f"position epoch={self.epoch}, step={self.step} must be >= 0")


@dataclass(frozen=True)
class JobConfig:
    """What every rank of one job must agree on; it fixes the serving order.

    Attributes:
        dataset: registered dataset name.
        selector: selector name (see `batchcraft.selectors.SELECTORS`).
        selector_params: selector keyword parameters (JSON-serialisable).
        batch_size: rows per batch per rank.
        world_size: number of ranks.
        seed: seed of the order and of the selector's randomness.
        last_batch: ``"partial"`` or ``"drop"`` (see `batchcraft.batcher.order`).
        scoring: ``"async"`` (latest reported feedback) or ``"sync"`` (every
            rank scores its share of each pool before the selection).
    """

    dataset: str
    selector: str = "uniform"
    selector_params: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 1
    world_size: int = 1
    seed: int = 0
    last_batch: LastBatch = "partial"
    scoring: ScoringMode = "async"

    def __post_init__(self) -> None:
        if not self.dataset:
            raise ConfigError("dataset must be a registered dataset name, got ''")
        if not 0 < self.batch_size <= MAX_BATCH_SIZE:
            raise ConfigError(f"batch_size={self.batch_size} must be in [1, {MAX_BATCH_SIZE}]")
        if self.world_size <= 0:
            raise ConfigError(f"world_size={self.world_size} must be > 0")
        if self.seed < 0:
            raise ConfigError(f"seed={self.seed} must be >= 0")
        if self.last_batch not in LAST_BATCH_RULES:
            raise ConfigError(
                f"last_batch={truncated_repr(self.last_batch)}; valid: {list(LAST_BATCH_RULES)}"
            )
        if self.scoring not in SCORING_MODES:
            raise ConfigError(
                f"scoring={truncated_repr(self.scoring)}; valid: {list(SCORING_MODES)}"
            )
        if not isinstance(self.selector_params, dict):
            raise ConfigError(
                f"selector_params must be a dict, got {truncated_repr(self.selector_params)}"
            )
        try:
            json.dumps(self.selector_params, sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"selector_params must be JSON-serialisable: {truncated_repr(str(exc))}"
            ) from exc

    @property
    def global_batch_size(self) -> int:
        """Rows per global step: ``batch_size * world_size``."""
        return self.batch_size * self.world_size

    def canonical_json(self) -> str:
        """Stable JSON of every field (sorted keys)."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    def default_job_id(self) -> str:
        """A job id derived from the configuration, for clients that give none."""
        digest = hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]
        return f"{self.dataset}-{self.selector}-{digest}"


@dataclass(frozen=True)
class StreamConfig:
    """One rank's view of a job.

    Attributes:
        rank: this rank, in ``[0, world_size)``.
        columns: columns to send (empty: all dataset columns).
        max_in_flight: batches sent but not acknowledged.
        num_epochs: stop after this many epochs from epoch 0; 0 means endless.
        start: resume position, or None for the server's checkpointed cursor.
        score_columns: columns sent with candidates in a sync round.
    """

    rank: int = 0
    columns: tuple[str, ...] = ()
    max_in_flight: int = 8
    num_epochs: int = 1
    start: Position | None = None
    score_columns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.rank < 0:
            raise ConfigError(f"rank={self.rank} must be >= 0")
        if not 0 < self.max_in_flight <= 1024:
            raise ConfigError(f"max_in_flight={self.max_in_flight} must be in [1, 1024]")
        if self.num_epochs < 0:
            raise ConfigError(f"num_epochs={self.num_epochs} must be >= 0 (0 = endless)")

    def check_against(self, job: JobConfig, columns: list[str]) -> None:
        """Raise ConfigError if the rank or a column does not fit the job and dataset, or a
        column is asked for twice."""
        if self.rank >= job.world_size:
            raise ConfigError(f"rank={self.rank} must be < world_size={job.world_size}")
        for name in (*self.columns, *self.score_columns):
            if name not in columns:
                raise ConfigError(
                    f"unknown column {truncated_repr(name)}; dataset columns: {columns}"
                )
        for setting in ("columns", "score_columns"):
            names = getattr(self, setting)
            if len(set(names)) < len(names):  # a batch's columns are a dict by name
                twice = next(name for name in names if names.count(name) > 1)
                raise ConfigError(f"{setting} names column {truncated_repr(twice)} twice")
