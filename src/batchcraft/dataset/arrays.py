"""Arrow vector columns <-> numpy matrices: the one conversion, with one null rule.

* `to_matrix` converts a list, large-list or fixed-size-list column of
  equal-width numeric vectors to an ``(n, d)`` array (float32 by default);
  **a null row becomes a row of NaN** (a selector or a check sees that the row
  has no vector instead of a shifted matrix).
* `matrix_view` is the zero-copy form used on the serving path: a numpy view
  of a fixed-size-list (or numeric) column's bytes, or None when no view
  exists, i.e. when the column holds nulls or values of another kind. It never
  converts.
* `to_list_array` goes the other way, to Spark's ``array<float>``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def is_byte_numeric(kind: pa.DataType) -> bool:
    """Whether ``kind`` is an integer or floating type of whole bytes."""
    return (pa.types.is_integer(kind) or pa.types.is_floating(kind)) and kind.bit_width % 8 == 0


def is_vector_type(kind: pa.DataType) -> bool:
    """Whether a column of this type holds vectors: (fixed-size or variable) lists of numbers."""
    is_list = pa.types.is_list(kind) or pa.types.is_large_list(kind)
    if not (is_list or pa.types.is_fixed_size_list(kind)):
        return False
    return pa.types.is_floating(kind.value_type) or pa.types.is_integer(kind.value_type)


def to_matrix(
    column: pa.Array | pa.ChunkedArray,
    width: int | None = None,
    *,
    dtype: Any = np.float32,
) -> np.ndarray:
    """An ``(n, d)`` matrix of a vector column; null rows are rows of NaN.

    Args:
        column: a list, large-list or fixed-size-list column of numbers.
        width: ``d`` when the column may have no non-null row to tell it
            (an empty or all-null variable-size list column); 0 otherwise.
        dtype: the matrix's floating type.

    Raises:
        ValueError: the non-null vectors are not all of one width.
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    count = len(column)
    fixed = pa.types.is_fixed_size_list(column.type)
    if fixed and not column.null_count:
        width = column.type.list_size
        return fixed_size_values(column).reshape(count, width).astype(dtype, copy=False)
    valid = _valid_mask(column)
    rows = int(valid.sum())
    values = column.flatten().to_numpy(zero_copy_only=False)  # the non-null rows' values
    if fixed:
        width = column.type.list_size
    elif rows:
        width = _common_width(column, values, rows)
    matrix = np.full((count, width or 0), np.nan, dtype=dtype)
    if rows:
        matrix[valid] = values.reshape(rows, width or 0)
    return matrix


def matrix_view(column: pa.Array) -> np.ndarray | None:
    """A zero-copy numpy view of ``column`` (rows on the first axis), or None.

    A fixed-size list of whole-byte numbers becomes a 2-D view, a whole-byte
    numeric column a 1-D one. None when the column (or its values) holds
    nulls or is of another type: then no view of its bytes is the matrix.
    """
    if column.null_count:
        return None
    kind = column.type
    if pa.types.is_fixed_size_list(kind):
        values = column.values  # the whole child: the list's own offset is applied below
        if values.null_count or not is_byte_numeric(values.type):
            return None
        width = kind.list_size
        flat = values.to_numpy(zero_copy_only=True)
        return flat[column.offset * width : (column.offset + len(column)) * width].reshape(
            -1, width
        )
    if is_byte_numeric(kind):
        return column.to_numpy(zero_copy_only=True)
    return None


def fixed_size_values(column: pa.FixedSizeListArray) -> np.ndarray:
    """The child values of a fixed-size list column as a flat numpy array (a view when
    the values are null-free numbers).

    Slices the child array by the column's offset instead of ``flatten()``,
    which dispatches a compute kernel and costs ~10x more per batch.
    """
    width = column.type.list_size
    values = column.values.slice(column.offset * width, len(column) * width)
    return values.to_numpy(zero_copy_only=False)


def to_list_array(matrix: np.ndarray) -> pa.ListArray:
    """An ``(n, d)`` array as an Arrow ``list<float32>`` column (Spark's ``array<float>``)."""
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    count, dimension = matrix.shape
    offsets = pa.array(np.arange(0, (count + 1) * dimension, dimension, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(matrix.reshape(-1)))


def to_fixed_size_list(matrix: np.ndarray, dtype: Any = np.float32) -> pa.FixedSizeListArray:
    """An ``(n, d)`` array as an Arrow ``fixed_size_list<dtype>[d]`` column."""
    matrix = np.ascontiguousarray(matrix, dtype=dtype)
    return pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)), matrix.shape[1])


def _valid_mask(column: pa.Array) -> np.ndarray:
    if not column.null_count:
        return np.ones(len(column), dtype=bool)
    return np.asarray(column.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


def _common_width(column: pa.Array, values: np.ndarray, rows: int) -> int:
    """The one width of a variable-size list column's non-null vectors."""
    if len(values) % rows:
        raise ValueError(f"vectors of unequal length: {len(values)} values for {rows} rows")
    found = len(values) // rows
    lengths = pc.list_value_length(column).drop_null().to_numpy(zero_copy_only=False)
    if (lengths != found).any():
        raise ValueError(f"vectors of unequal length: {sorted(set(lengths.tolist()))[:5]}")
    return found
