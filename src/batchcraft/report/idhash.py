"""Served ids joined with millions of rows through their 64-bit hashes
(`batchcraft.dataset.hashing.string_hashes`, the server's id index's).

Looking up every batch of rows in a hash set of all served ids would rebuild that set
once per batch (pyarrow's ``index_in`` does not keep it). Instead the served ids are
hashed once into a sorted uint64 array and each batch's ids are hashed and found by
binary search: O(rows · log served) overall, 16 bytes per served id. Two different ids
share a 64-bit hash with probability ~n²/2⁶⁵ (about 3e-8 for a million ids), which at
worst misattributes one id's exposure; the report's counts of rows are unaffected.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from batchcraft.dataset.hashing import NULL_HASH, string_hashes


class HashIndex:
    """Positions of ids in a fixed set, found by binary search over their sorted hashes.

    Args:
        ids: The distinct ids of the set.
    """

    def __init__(self, ids: pa.Array | pa.ChunkedArray) -> None:
        hashes = string_hashes(ids)
        self._order = np.argsort(hashes, kind="stable")
        self._sorted = hashes[self._order]

    def lookup(self, ids: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
        """For each id: whether it is in the set, and its position in the set (0 if not)."""
        hashes = string_hashes(ids)
        slots = np.searchsorted(self._sorted, hashes)
        inside = slots < len(self._sorted)
        found = np.zeros(len(hashes), dtype=bool)
        found[inside] = self._sorted[slots[inside]] == hashes[inside]
        found &= hashes != NULL_HASH
        positions = np.where(found, self._order[np.minimum(slots, len(self._order) - 1)], 0)
        return found, positions
