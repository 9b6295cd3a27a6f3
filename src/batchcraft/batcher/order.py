"""The serving order: pure functions of (seed, epoch, step, global batch size).

An epoch walks a seeded permutation of the dataset's kept rows. Step ``s``
draws the pool ``permutation[s * P : (s + 1) * P]`` (``P`` = the selector's
pool size for the global batch), the selector picks ``G`` rows of it (the
global batch, ``G = batch_size * world_size``), and rank ``r`` receives the
``r``-th of ``world_size`` contiguous slices of that selection. Ranks are
therefore disjoint and all ranks have the same number of batches per epoch.

Last-batch rule (``last_batch``), for the rows left when fewer than ``P``
remain:

* ``"partial"`` (default): one more, smaller step. Its selection has
  ``floor(remaining * G / P)`` rows (all remaining rows for uniform) and is
  split over the ranks as evenly as possible (sizes differ by at most one;
  a rank's final batch is empty only if fewer rows than ranks remain).
  With uniform, every kept row is served exactly once per epoch.
* ``"drop"``: the remaining rows are skipped this epoch; every batch is
  full. The next epoch's permutation is different, so no row is skipped
  forever.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np

from batchcraft.errors import ConfigError

LastBatch = Literal["partial", "drop"]
LAST_BATCH_RULES: tuple[str, ...] = ("partial", "drop")


def epoch_permutation(num_rows: int, seed: int, epoch: int) -> np.ndarray:
    """The row order of ``epoch``: a permutation of ``range(num_rows)`` (int64)."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, epoch, 0])))
    return rng.permutation(num_rows).astype(np.int64)


def selection_rng(seed: int, epoch: int, step: int) -> np.random.Generator:
    """The selector's random generator for one global step (independent of the order's).

    Seeded by ``SeedSequence([seed, epoch, step, 1])``; handing PCG64 the list
    builds the same SeedSequence without the explicit object, which halves
    the cost of this per-batch call.
    """
    return np.random.Generator(np.random.PCG64([seed, epoch, step, 1]))


def rank_slice(length: int, rank: int, world_size: int) -> slice:
    """The ``rank``-th of ``world_size`` contiguous, near-equal parts of ``range(length)``."""
    return slice(rank * length // world_size, (rank + 1) * length // world_size)


@dataclass(frozen=True)
class EpochLayout:
    """How one epoch of ``num_rows`` rows is cut into pools and global batches.

    Attributes:
        num_rows: kept rows in the dataset.
        pool_size: candidates per step (``P``).
        global_batch_size: rows selected per step (``G``), at most ``pool_size``.
        last_batch: the rule for the incomplete tail (module docstring).
    """

    num_rows: int
    pool_size: int
    global_batch_size: int
    last_batch: LastBatch = "partial"

    def __post_init__(self) -> None:
        if self.num_rows < 0:
            raise ConfigError(f"num_rows={self.num_rows} must be >= 0")
        if not 0 < self.global_batch_size <= self.pool_size:
            raise ConfigError(
                f"global_batch_size={self.global_batch_size} must be in [1, {self.pool_size=}]"
            )
        if self.last_batch not in LAST_BATCH_RULES:
            raise ConfigError(f"last_batch={self.last_batch!r}; valid: {list(LAST_BATCH_RULES)}")

    def check_serves_a_batch(self, dataset: str, *, epoch_level: bool = False) -> None:
        """Refuse a layout that drops the tail of every epoch when nothing but a tail exists
        (a global batch, or its pool, larger than the dataset): it would never serve a
        batch. An epoch-level selector plans its own batches, needing only the global batch.

        Raises:
            ConfigError: naming the sizes and the dataset.
        """
        needed = self.global_batch_size if epoch_level else self.pool_size
        if self.last_batch == "drop" and needed > self.num_rows:
            raise ConfigError(
                f"a global batch of {self.global_batch_size} rows (batch_size × world_size, "
                f"chosen from {needed} candidates) with last_batch='drop' leaves no batch in "
                f"dataset {dataset!r} of {self.num_rows} kept rows; lower batch_size, or "
                "use last_batch='partial'"
            )

    @cached_property
    def steps(self) -> int:
        """Global steps per epoch (asked for several times per served batch)."""
        full, remaining = divmod(self.num_rows, self.pool_size)
        partial = self.last_batch == "partial" and self._tail_count(remaining) > 0
        return full + int(partial)

    def pool_bounds(self, step: int) -> tuple[int, int]:
        """``(start, stop)`` of step ``step``'s pool in the epoch permutation."""
        self._check_step(step)
        start = step * self.pool_size
        return start, min(start + self.pool_size, self.num_rows)

    def select_count(self, step: int) -> int:
        """Rows the selector picks at ``step`` (``G`` except for a partial tail)."""
        start, stop = self.pool_bounds(step)
        if stop - start == self.pool_size:
            return self.global_batch_size
        return self._tail_count(stop - start)

    def _tail_count(self, remaining: int) -> int:
        return remaining * self.global_batch_size // self.pool_size

    def _check_step(self, step: int) -> None:
        if not 0 <= step < self.steps:
            raise ConfigError(f"step={step} must be in [0, {self.steps})")
