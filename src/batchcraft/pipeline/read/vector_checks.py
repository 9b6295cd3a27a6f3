"""Checks of precomputed embeddings: a vector is usable only if it can be scaled to unit norm.

Unusable: a missing or empty vector, a value that is not a number or is null, a value that
is not a finite float32 (NaN, ±inf, or beyond ±3.4e38, which turns into inf once stored as
float32), and a vector of zeros only (it has no direction). Each check returns what is
wrong as the end of a sentence ("holds nan at position 3; ..."), or None when all is well.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_ALL_ZEROS = "is all zeros: a zero vector has no direction to scale to unit norm"
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def vector_problem(values: Any) -> str | None:
    """What is wrong with one vector given as a Python list (a JSON array), or None."""
    if values is None:
        return "is missing"
    if not isinstance(values, list | tuple):
        return f"holds a {type(values).__name__}, not a list of numbers"
    if not values:
        return "is empty"
    for position, item in enumerate(values):
        if isinstance(item, bool) or not isinstance(item, int | float):
            return f"holds {item!r} at position {position}, not a number"
        if isinstance(item, int) and abs(item) > _FLOAT32_MAX:  # maybe too large for float()
            digits = len(str(abs(item)))
            return _out_of_range(f"an integer of {digits} digits", position, beyond_float32=True)
    with np.errstate(over="ignore"):  # beyond the float32 range: inf, reported below
        stored = np.array(values, dtype=np.float64).astype(np.float32)
    not_finite = np.flatnonzero(~np.isfinite(stored))
    if len(not_finite):
        position = int(not_finite[0])
        return _not_finite(float(values[position]), position)
    return None if stored.any() else _ALL_ZEROS


def vector_problems(vectors: pa.Array) -> list[str | None]:
    """What is wrong with each vector of an Arrow list column (None for a usable one).

    The values are checked as one float32 numpy array (and a few booleans per value),
    never as Python floats.
    """
    lengths = pc.fill_null(pc.list_value_length(vectors), 0).to_numpy(zero_copy_only=False)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    flat = pc.list_flatten(vectors)
    stored = flat.cast(pa.float32(), safe=False).to_numpy(zero_copy_only=False)  # null: NaN
    holes = flat.is_null().to_numpy(zero_copy_only=False)
    not_finite = ~np.isfinite(stored) & ~holes
    problems: list[str | None] = [None] * len(vectors)
    for row in _rows_with(stored != 0, starts, lengths, invert=True):
        problems[row] = _ALL_ZEROS
    for row in _rows_with(not_finite, starts, lengths):
        position = _first_flagged(not_finite, starts[row], lengths[row])
        problems[row] = _not_finite(flat[int(starts[row]) + position].as_py(), position)
    for row in _rows_with(holes, starts, lengths):
        position = _first_flagged(holes, starts[row], lengths[row])
        problems[row] = f"holds a null value at position {position}"
    missing = vectors.is_null().to_numpy(zero_copy_only=False)
    for row in np.flatnonzero(lengths == 0).tolist():
        problems[row] = "is missing" if missing[row] else "is empty"
    return problems


def _rows_with(
    flags: np.ndarray, starts: np.ndarray, lengths: np.ndarray, *, invert: bool = False
) -> list[int]:
    """The non-empty rows (``lengths[i]`` values from ``starts[i]``) with a flagged value,
    or with none when ``invert``."""
    nonempty = np.flatnonzero(lengths > 0)
    if not len(nonempty):
        return []
    flagged = np.logical_or.reduceat(flags, starts[nonempty])
    return nonempty[~flagged if invert else flagged].tolist()


def _first_flagged(flags: np.ndarray, start: int, length: int) -> int:
    """Position within its row of the row's first flagged value."""
    return int(np.argmax(flags[start : start + length]))


def _not_finite(value: float, position: int) -> str:
    """A value that is NaN, ±inf, or finite only until it is stored as float32."""
    return _out_of_range(repr(value), position, beyond_float32=math.isfinite(value))


def _out_of_range(shown: str, position: int, *, beyond_float32: bool) -> str:
    note = " (beyond the float32 range)" if beyond_float32 else ""
    return f"holds {shown} at position {position}{note}; every value must be finite"
