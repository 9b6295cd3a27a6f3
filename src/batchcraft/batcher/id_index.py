"""`IdIndex`: row positions of string ids, held in numpy, not in Python objects.

A server looks ids up for every feedback report. A pandas Index over Python
strings grew a server's memory by 109 MiB per million short ids (measured), a
gigabyte at 10M, before a row was served; this index costs 12 bytes a row
(19 MiB per million measured, with the allocator's slack): the sorted
64-bit hashes of the ids (`batchcraft.dataset.hashing.string_hashes`) and the row
position of each. A lookup is one ``searchsorted``; the ids found are compared with the
ids asked for (in Arrow, without Python strings), so an unknown id whose hash
happens to equal a served one's is still unknown. Rows whose hashes collide
are resolved by comparing their ids, which is also how duplicate ids are
found when the index is built.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batchcraft.dataset.hashing import string_hashes
from batchcraft.errors import DatasetError, truncated_repr

Hasher = Callable[[pa.Array], np.ndarray]


class IdIndex:
    """Positions of the ids of a string column (see the module docstring).

    Args:
        ids: the served rows' ids, position by position (a string array).
        hasher: the hash function (tests pass a poor one to force collisions).

    Raises:
        DatasetError: an id is null or appears twice (naming it).
    """

    def __init__(self, ids: pa.Array, hasher: Hasher = string_hashes) -> None:
        if ids.null_count:
            raise DatasetError(f"{ids.null_count} kept rows have no id")
        self.ids = ids
        self._hasher = hasher
        hashes = hasher(ids)
        width = np.int32 if len(ids) < 2**31 else np.int64
        self._order = np.argsort(hashes, kind="stable").astype(width)
        self._hashes = hashes[self._order]
        del hashes
        repeated = self._hashes[1:] == self._hashes[:-1]
        self._collided = np.unique(self._hashes[1:][repeated])  # sorted
        for value in self._collided:
            self._check_distinct(self._rows_of(value))

    def __len__(self) -> int:
        return len(self.ids)

    def positions_of(self, ids: Sequence[str] | np.ndarray | pa.Array) -> np.ndarray:
        """Positions of ``ids`` (int64); -1 for ids that are not served."""
        query = ids if isinstance(ids, pa.Array) else pa.array(list(ids), pa.string())
        if len(query) == 0 or len(self.ids) == 0:
            return np.full(len(query), -1, np.int64)
        if query.null_count:
            query = query.fill_null("")  # no served id is null: "" is checked like any id
        hashes = self._hasher(query)
        at = np.minimum(np.searchsorted(self._hashes, hashes), len(self._hashes) - 1)
        hit = self._hashes[at] == hashes
        positions = np.where(hit, self._order[at], -1).astype(np.int64)
        found = np.flatnonzero(hit)
        if found.size:  # an unknown id may share a served id's hash
            same = pc.equal(self.ids.take(positions[found]), query.take(found))
            positions[found[~same.to_numpy(zero_copy_only=False)]] = -1
        if self._collided.size:
            for row in np.flatnonzero(np.isin(hashes, self._collided)):
                positions[row] = self._resolve(int(hashes[row]), query[row].as_py())
        return positions

    def _rows_of(self, value: np.uint64) -> np.ndarray:
        """Positions of the rows whose hash is ``value``."""
        low = np.searchsorted(self._hashes, value, side="left")
        high = np.searchsorted(self._hashes, value, side="right")
        return np.sort(self._order[low:high]).astype(np.int64)

    def _resolve(self, value: int, wanted: str) -> int:
        rows = self._rows_of(np.uint64(value))
        names = self.ids.take(rows).to_pylist()
        return int(rows[names.index(wanted)]) if wanted in names else -1

    def _check_distinct(self, rows: np.ndarray) -> None:
        names = self.ids.take(rows).to_pylist()
        if len(set(names)) < len(names):
            twice = next(name for name in names if names.count(name) > 1)
            raise DatasetError(f"kept rows have duplicate ids, e.g. {truncated_repr(twice)}")
