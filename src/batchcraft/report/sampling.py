"""Bounded, deterministic per-group samples over a stream of record batches."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa


def bottom_k(groups: np.ndarray, keys: np.ndarray, per_group: int) -> np.ndarray:
    """Indices of the ``per_group`` rows with the smallest keys within every group.

    Ties are broken by position, so the result is deterministic.

    Args:
        groups: Integer group of every row.
        keys: Sort key of every row.
        per_group: How many rows to keep per group.

    Returns:
        Row indices, ordered by group then key.
    """
    count = len(groups)
    if count == 0 or per_group <= 0:
        return np.empty(0, dtype=np.int64)
    order = np.lexsort((keys, groups))
    sorted_groups = groups[order]
    starts = np.ones(count, dtype=bool)
    starts[1:] = sorted_groups[1:] != sorted_groups[:-1]
    positions = np.arange(count)
    group_start = np.maximum.accumulate(np.where(starts, positions, 0))
    return order[(positions - group_start) < per_group]


def _as_numpy(column: pa.Array | pa.ChunkedArray | np.ndarray) -> np.ndarray:
    if isinstance(column, np.ndarray):
        return column
    return np.asarray(column.to_numpy(zero_copy_only=False))


class GroupedSample:
    """Keeps, for every group, the rows with the smallest keys seen so far.

    With uniform random keys this is a uniform sample without replacement per group
    (priority sampling); with a data column as key it keeps the per-group minima.
    Memory is bounded by ``per_group`` times the number of groups: payload columns
    are materialised only for rows that survive the per-batch selection.

    Args:
        per_group: How many rows to keep per group.
    """

    def __init__(self, per_group: int) -> None:
        self.per_group = per_group
        self._groups = np.empty(0, dtype=np.int64)
        self._keys = np.empty(0, dtype=np.float64)
        self._payload: dict[str, np.ndarray] = {}

    def offer(
        self,
        groups: np.ndarray,
        keys: np.ndarray,
        payload: Mapping[str, pa.Array | pa.ChunkedArray | np.ndarray],
    ) -> None:
        """Offer a batch of rows; payload columns are aligned with ``groups``."""
        chosen = bottom_k(groups, keys, self.per_group)
        if chosen.size == 0:
            return
        fresh = {name: _as_numpy(column)[chosen] for name, column in payload.items()}
        all_groups = np.concatenate([self._groups, groups[chosen].astype(np.int64)])
        all_keys = np.concatenate([self._keys, keys[chosen].astype(np.float64)])
        keep = bottom_k(all_groups, all_keys, self.per_group)
        self._groups, self._keys = all_groups[keep], all_keys[keep]
        existing = self._payload or {name: column[:0] for name, column in fresh.items()}
        self._payload = {
            name: np.concatenate([existing[name], fresh[name]])[keep] for name in fresh
        }

    def rows(self, group: int | None = None) -> list[dict[str, Any]]:
        """The kept rows (of one group, or all), ordered by group then key."""
        mask = np.ones(len(self._groups), bool) if group is None else self._groups == group
        indices = np.flatnonzero(mask)
        return [
            {"group": int(self._groups[i]), "key": float(self._keys[i])}
            | {name: _python(column[i]) for name, column in self._payload.items()}
            for i in indices
        ]


def _python(value: Any) -> Any:
    """A numpy scalar as the equivalent Python value (JSON-friendly)."""
    return value.item() if isinstance(value, np.generic) else value
