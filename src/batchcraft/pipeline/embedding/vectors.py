"""Scaling vectors to unit L2 norm, safely at any finite scale: the embed step's output,
precomputed vectors, and the k-means centroids all go through it."""

from __future__ import annotations

import numpy as np

_NORM_BLOCK_ROWS = 8192
_SMALLEST_NORM = np.finfo(np.float64).tiny  # below any nonzero float32 vector's norm


def unit_norm(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm, as float32 (zero rows stay zero).

    The arithmetic is float64, a block of rows at a time: in float32 the squares of very
    small or very large (yet finite) values underflow to 0 or overflow to inf, and such
    rows would come out far from unit norm.
    """
    vectors = np.asarray(vectors)
    result = np.empty(vectors.shape, dtype=np.float32)
    for start in range(0, len(vectors), _NORM_BLOCK_ROWS):
        block = vectors[start : start + _NORM_BLOCK_ROWS].astype(np.float64)
        norms = np.linalg.norm(block, axis=1, keepdims=True)
        result[start : start + _NORM_BLOCK_ROWS] = block / np.maximum(norms, _SMALLEST_NORM)
    return result
