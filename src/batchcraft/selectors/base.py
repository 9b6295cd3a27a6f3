"""The selector contract: `Selection`, the `Selector` protocol and `BaseSelector`.

A selector is a frozen dataclass of its parameters (validated on construction)
with one method, ``select(pool, batch_size, rng) -> Selection``.

How a batcher drives a selector:

1. ``selector.required_columns`` must be present in every pool (missing ones
   raise `MissingColumnsError`, a ValueError naming them; some selectors accept
   one of several sets, so ask ``selector.check_columns(names)`` before
   gathering a pool); ``selector.optional_columns`` are used when present
   (mostly trainer feedback, see `batchcraft.selectors.pool.FEEDBACK_COLUMNS`).
2. Per batch, draw ``selector.pool_size(batch_size)`` candidate rows
   (``ceil(batch_size * pool_factor)``: 1× for uniform, r× for coreset,
   ``1 / (1 - filter_ratio)``× for concept and jest), build a `Pool` and call
   ``select``. The returned indices are positions in that pool.
3. Epoch-level selectors (``epoch_level = True``; hard_negative) need all
   rows at once: at the start of each epoch call
   ``selector.plan_epoch(pool_of_all_rows, batch_size, rng, epoch=epoch)``,
   which returns a list of int64 index arrays covering every row exactly once;
   then, for each planned batch, call ``select(pool.take(batch), batch_size, rng)``
   to get the batch's metrics and masks (it keeps all rows, in order).

Trainer feedback (see `batchcraft.selectors.pool.FEEDBACK_COLUMNS`) reaches a
selector through the pool. For ``jest`` it comes in one of two modes:

- synchronous (as in the paper): draw the super-batch, have the trainer
  embed it with the current learner (both towers, forward only), put the
  results in ``learner_embeddings``/``learner_pair_embeddings`` (plus
  ``learner_logit_scale``/``learner_logit_bias``), then call ``select``;
- asynchronous (no added latency): fill those columns from the latest
  embeddings the trainer reported per row; rows never reported are NaN and
  count as zero learnability.

With only per-example ``learner_losses`` (and ``reference_losses`` from the
dataset's ``ref_loss``) ``jest`` falls back to independent selection and says
so in ``info``.

``Selection.info`` holds per-batch metrics. Values are JSON-serialisable
(``int``, ``float``, ``str``, ``bool``, lists of those) except numpy arrays,
which are per-batch masks/arrays aligned with ``indices`` (e.g.
``false_negative_mask``, shape (b, b) bool); `Selection.metrics` returns only
the JSON-serialisable part.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from batchcraft.errors import BatchcraftError, ConfigError, truncated_repr
from batchcraft.selectors.parameters import check_parameter_types
from batchcraft.selectors.pool import Pool


class MissingColumnsError(BatchcraftError, ValueError):
    """A pool lacks columns a selector needs; ``missing`` lists them."""

    def __init__(self, selector: str, missing: list[str], present: list[str]) -> None:
        self.missing = missing
        super().__init__(
            f"selector {selector!r} needs pool columns {missing}, which are missing; "
            f"the pool has {present}"
        )


@dataclass(frozen=True, eq=False)
class Selection:
    """The rows a selector picked from a pool.

    Attributes:
        indices: int64 positions in the pool, distinct, in batch order.
        weights: float32 per-row loss weights, or None for unweighted batches.
        info: per-batch metrics; numpy arrays are masks aligned with ``indices``.
    """

    indices: np.ndarray
    weights: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        indices = np.asarray(self.indices, dtype=np.int64).reshape(-1)
        object.__setattr__(self, "indices", indices)
        if self.weights is not None:
            weights = np.asarray(self.weights, dtype=np.float32).reshape(-1)
            if weights.shape != indices.shape:
                raise ConfigError(f"{weights.shape=} must match {indices.shape=}")
            object.__setattr__(self, "weights", weights)

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def metrics(self) -> dict[str, Any]:
        """The JSON-serialisable entries of ``info`` (numpy arrays left out)."""
        return {key: value for key, value in self.info.items() if not isinstance(value, np.ndarray)}


@runtime_checkable
class Selector(Protocol):
    """What the batcher calls. See the module docstring for the calling sequence."""

    name: ClassVar[str]
    epoch_level: ClassVar[bool]

    @property
    def required_columns(self) -> frozenset[str]: ...

    @property
    def optional_columns(self) -> frozenset[str]: ...

    @property
    def pool_factor(self) -> float: ...

    def whole_pool(self, pool_size: int) -> Selection | None: ...

    def pool_size(self, batch_size: int) -> int: ...

    def select(self, pool: Pool, batch_size: int, rng: np.random.Generator) -> Selection: ...


@runtime_checkable
class EpochPlanner(Selector, Protocol):
    """An epoch-level selector (``epoch_level = True``): plans every batch of an epoch."""

    def plan_epoch(
        self, pool: Pool, batch_size: int, rng: np.random.Generator, epoch: int = 0
    ) -> list[np.ndarray]: ...


class BaseSelector:
    """Shared plumbing: column checks, pool sizing, argument validation.

    Subclasses are frozen dataclasses that set ``name``, override
    ``required_columns``/``optional_columns``/``pool_factor`` as needed and
    implement ``_select`` (called with a validated pool and batch size).
    """

    name: ClassVar[str] = "base"
    epoch_level: ClassVar[bool] = False

    def __post_init__(self) -> None:
        """Hold every parameter to its annotated type (`check_parameter_types`); subclasses
        that check ranges call this first."""
        check_parameter_types(self)

    @property
    def required_columns(self) -> frozenset[str]:
        """Columns every pool must have."""
        return frozenset()

    @property
    def optional_columns(self) -> frozenset[str]:
        """Columns (mostly trainer feedback) used when present."""
        return frozenset()

    @property
    def pool_factor(self) -> float:
        """How many candidate rows per batch row the batcher should draw."""
        return 1.0

    def whole_pool(self, pool_size: int) -> Selection | None:
        """The selection of all ``pool_size`` rows of a pool, when it needs neither the
        pool's columns nor randomness (callers may then skip building the Pool); else None."""
        return None

    def pool_size(self, batch_size: int) -> int:
        """Number of candidates to draw for a batch of ``batch_size`` rows."""
        check_batch_size(batch_size)
        return math.ceil(batch_size * self.pool_factor - 1e-9)

    def check_pool(self, pool: Pool) -> None:
        """Raise `MissingColumnsError` if ``pool`` lacks a required column."""
        self.check_columns(pool.present_columns())

    def check_columns(self, present: frozenset[str]) -> None:
        """Raise `MissingColumnsError` unless a pool with the per-row columns ``present``
        can be selected from (callers may check before gathering the pool)."""
        missing = sorted(self.required_columns - present)
        if missing:
            raise MissingColumnsError(self.name, missing, sorted(present))

    def columns_used(self, present: frozenset[str]) -> frozenset[str]:
        """The columns a selection reads when ``present`` are available, so a caller
        gathers no others (default: every required or optional column present)."""
        return (self.required_columns | self.optional_columns) & present

    def select(self, pool: Pool, batch_size: int, rng: np.random.Generator) -> Selection:
        """Pick up to ``batch_size`` distinct rows of ``pool``.

        Args:
            pool: the candidate rows.
            batch_size: rows wanted; fewer are returned only if the pool is smaller.
            rng: the only source of randomness; same seed, same selection.
        """
        check_batch_size(batch_size)
        if not isinstance(rng, np.random.Generator):
            raise ConfigError(
                f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), got {type(rng)}"
            )
        self.check_pool(pool)
        if len(pool) == 0:
            return Selection(np.empty(0, dtype=np.int64), None, {"selector": self.name})
        return self._select(pool, min(batch_size, len(pool)), rng)

    def _select(self, pool: Pool, batch_size: int, rng: np.random.Generator) -> Selection:
        raise NotImplementedError


def check_batch_size(batch_size: int) -> None:
    """Raise ConfigError unless ``batch_size`` is a positive int."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
        raise ConfigError(f"batch_size must be an int, got {truncated_repr(batch_size)}")
    if batch_size <= 0:
        raise ConfigError(f"{batch_size=} must be > 0")


def check_range(
    name: str,
    value: float,
    low: float,
    high: float,
    *,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> None:
    """Raise ConfigError naming ``name``, ``value`` and the valid range if out of it.

    Raises:
        TypeError: ``value`` is not a number (`get_selector` reports it as a bad parameter).
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}={truncated_repr(value)} must be a number")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond the float range is out of any range here
        number = math.inf if value > 0 else -math.inf
    above = number >= low if low_inclusive else number > low
    below = number <= high if high_inclusive else number < high
    if math.isnan(number) or not (above and below):
        left = "[" if low_inclusive else "("
        right = "]" if high_inclusive else ")"
        raise ConfigError(f"{name}={truncated_repr(value)} must be in {left}{low}, {high}{right}")


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """``np.unique(values)`` of a 1-D array: a sort and a mask, several times faster for ints."""
    ordered = np.sort(values)
    first = np.empty(len(ordered), dtype=bool)
    first[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    return ordered[first]
