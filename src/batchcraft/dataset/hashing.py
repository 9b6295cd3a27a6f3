"""The 64-bit hashes the dataset's readers share: the mixing function (ids, shingles) and
the hash of string ids (the server's id index, the report's exposure join)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
_CHUNK = 1 << 20  # ids hashed at a time: bounds the temporaries of a 10M-row open
NULL_HASH = np.uint64(0)
"""The hash of a null id (no string hashes to it in practice)."""


def mix64(values: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, on a copy: every input bit flips about half the output
    bits, so hashes whose inputs share bits (FNV of similar ids, n-grams that share
    words) are unrelated, and their low bits sort well."""
    mixed = values.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):  # the arithmetic is modulo 2**64 by design
        mixed ^= mixed >> np.uint64(30)
        mixed *= np.uint64(0xBF58476D1CE4E5B9)
        mixed ^= mixed >> np.uint64(27)
        mixed *= np.uint64(0x94D049BB133111EB)
        mixed ^= mixed >> np.uint64(31)
    return mixed


def string_hashes(ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A 64-bit hash (uint64) of each string of ``ids`` (string or large_string): FNV-1a
    over its UTF-8 bytes, vectorised over byte positions, then `mix64`; computed from the
    Arrow buffers without Python strings, a million ids at a time. Nulls hash to
    `NULL_HASH`."""
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    hashes = np.empty(len(ids), np.uint64)
    for start in range(0, len(ids), _CHUNK):
        hashes[start : start + _CHUNK] = _hash_chunk(ids.slice(start, _CHUNK))
    if ids.null_count:
        hashes[~ids.is_valid().to_numpy(zero_copy_only=False)] = NULL_HASH
    return hashes


def _hash_chunk(ids: pa.Array) -> np.ndarray:
    _, offsets_buffer, data_buffer = ids.buffers()
    width = np.int64 if pa.types.is_large_string(ids.type) else np.int32
    offsets = np.frombuffer(offsets_buffer, width)[ids.offset : ids.offset + len(ids) + 1]
    offsets = offsets.astype(np.int64)
    data = (
        np.frombuffer(data_buffer, np.uint8) if data_buffer is not None else np.zeros(1, np.uint8)
    )
    starts, lengths = offsets[:-1], np.diff(offsets)
    hashes = np.full(len(ids), _FNV_OFFSET, np.uint64)
    rows = np.arange(len(ids))
    with np.errstate(over="ignore"):  # the arithmetic is modulo 2**64 by design
        for k in range(int(lengths.max(initial=0))):
            rows = rows[lengths[rows] > k]  # ids with a k-th byte
            hashes[rows] = (hashes[rows] ^ data[starts[rows] + k]) * _FNV_PRIME
    return mix64(hashes)  # FNV's low bits alone sort poorly
