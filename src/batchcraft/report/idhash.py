"""Vectorised 64-bit hashes of string ids, to join served ids with millions of rows.

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
import pyarrow.compute as pc

from batchcraft.dataset.hashing import mix64

_BASE = np.uint64(0x100000001B3)  # FNV-1a 64-bit prime as the polynomial base
_NULL_HASH = np.uint64(0)
_SEED = np.uint64(0x9E3779B97F4A7C15)  # keeps the empty string off the null hash


def string_hashes(ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """One uint64 hash per string (nulls hash to 0, which no string hashes to in practice)."""
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    ids = ids.cast(pa.large_binary())
    count = len(ids)
    if count == 0:
        return np.zeros(0, dtype=np.uint64)
    _, offset_buffer, data_buffer = ids.buffers()
    offsets = np.frombuffer(offset_buffer, dtype=np.int64)[ids.offset : ids.offset + count + 1]
    lengths = np.diff(offsets)
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer else np.zeros(0, np.uint8)
    data = data[offsets[0] : offsets[-1]].astype(np.uint64)
    positions = np.arange(len(data)) - np.repeat(offsets[:-1] - offsets[0], lengths)
    powers = np.cumprod(np.full(int(lengths.max(initial=0)) + 1, _BASE, dtype=np.uint64))
    with np.errstate(over="ignore"):
        terms = (data + np.uint64(1)) * powers[positions]
    sums = np.zeros(count, dtype=np.uint64)
    nonempty = lengths > 0
    if nonempty.any():
        starts = (offsets[:-1] - offsets[0])[nonempty]
        sums[nonempty] = np.add.reduceat(terms, starts)
    hashes = mix64(sums ^ lengths.astype(np.uint64) ^ _SEED)
    valid = pc.is_valid(ids).to_numpy(zero_copy_only=False)
    hashes[~valid] = _NULL_HASH
    return hashes


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
        found &= hashes != _NULL_HASH
        positions = np.where(found, self._order[np.minimum(slots, len(self._order) - 1)], 0)
        return found, positions
