"""Conversions between Arrow list columns and numpy matrices (no copies where possible)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def to_matrix(column: pa.Array | pa.ChunkedArray, dimension: int | None = None) -> np.ndarray:
    """An Arrow list / fixed-size-list column of equal-length float vectors as an (n, d) float32 array."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    count = len(column)
    values = np.asarray(column.flatten().to_numpy(zero_copy_only=False), dtype=np.float32)
    if count == 0:
        return np.zeros((0, dimension or 0), dtype=np.float32)
    if len(values) % count:
        raise ValueError(f"vectors of unequal length: {len(values)} values for {count} rows")
    return values.reshape(count, len(values) // count)


def to_list_array(matrix: np.ndarray) -> pa.ListArray:
    """An (n, d) array as an Arrow list<float32> column (Spark's array<float>)."""
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    count, dimension = matrix.shape
    offsets = pa.array(np.arange(0, (count + 1) * dimension, dimension, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(matrix.reshape(-1)))
