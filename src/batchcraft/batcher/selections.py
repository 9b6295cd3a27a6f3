"""What a selection is: the rows of one global step, and one rank's part of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from batchcraft.batcher.config import Position
from batchcraft.batcher.order import rank_slice


@dataclass(frozen=True, eq=False)
class GlobalSelection:
    """The rows of one global step: dataset positions in batch order, weights, info, and
    where it was made: ``request`` (on the request path), ``worker`` (ahead of demand, by
    a look-ahead worker) or ``plan`` (an epoch plan)."""

    position: Position
    positions: np.ndarray
    weights: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)
    made_by: str = "request"


@dataclass(frozen=True, eq=False)
class RankBatch:
    """One rank's part of a global selection."""

    position: Position
    rank: int
    positions: np.ndarray
    weights: np.ndarray | None
    metrics: dict[str, Any]
    arrays: dict[str, np.ndarray]
    made_by: str = "request"


class SelectionSource(Protocol):
    """Selections made before they are asked for (``Job.ahead``): by worker processes
    (`batchcraft.batcher.lookahead`) or an epoch plan (`batchcraft.batcher.plans`)."""

    def take(self, position: Position) -> GlobalSelection | None:
        """The selection at ``position`` if made ahead (waiting for one under way)."""

    def keep(self, selection: GlobalSelection) -> None:
        """Keep a selection made on the request path for the job's other ranks."""

    def after(self, position: Position) -> None:
        """A rank asked for ``position``: start what follows."""

    def epoch_plan(self, epoch: int) -> list[np.ndarray] | None:
        """An epoch-level selector's batches of ``epoch`` if made ahead (waiting for one
        under way); None: the job plans the epoch itself."""

    def pause(self) -> None:
        """A session of the job ended: drop the work no worker has started (the workers
        are then free for other jobs; the job's next request starts it again)."""


def rank_part(selection: GlobalSelection, rank: int, world_size: int) -> RankBatch:
    """Rank ``rank``'s contiguous part of ``selection`` (per-row info arrays sliced alike)."""
    part = rank_slice(len(selection.positions), rank, world_size)
    size = len(selection.positions)
    metrics: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    for key, value in selection.info.items():
        if isinstance(value, np.ndarray):
            arrays[key] = _slice_aligned(value, part, size)
        else:
            metrics[key] = value
    weights = None if selection.weights is None else selection.weights[part]
    positions = selection.positions[part]
    return RankBatch(
        selection.position, rank, positions, weights, metrics, arrays, selection.made_by
    )


def _slice_aligned(value: np.ndarray, part: slice, size: int) -> np.ndarray:
    """Slice the leading axes of a per-row info array that are aligned with the batch."""
    if value.ndim >= 1 and value.shape[0] == size:
        value = value[part]
        if value.ndim >= 2 and value.shape[1] == size:
            value = value[:, part]
    return value
