"""Shared invariant checks and tiny synthetic pools for the selector tests."""

from __future__ import annotations

import numpy as np

from batchcraft.selectors import Pool, Selection
from batchcraft.selectors.base import BaseSelector


def unit_rows(rng: np.random.Generator, num_rows: int, dim: int) -> np.ndarray:
    """Random unit-norm float32 rows."""
    rows = rng.standard_normal((num_rows, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def assert_valid_selection(selection: Selection, pool_size: int, batch_size: int) -> None:
    """Distinct, in-range int64 indices of the expected length."""
    indices = selection.indices
    assert indices.dtype == np.int64
    assert len(indices) == min(batch_size, pool_size)
    assert len(np.unique(indices)) == len(indices)
    assert indices.min(initial=0) >= 0
    assert indices.max(initial=-1) < pool_size


def assert_deterministic(selector: BaseSelector, pool: Pool, batch_size: int, seed: int) -> None:
    """Same seed, same indices, weights and metrics."""
    first = selector.select(pool, batch_size, np.random.default_rng(seed))
    second = selector.select(pool, batch_size, np.random.default_rng(seed))
    np.testing.assert_array_equal(first.indices, second.indices)
    if first.weights is None:
        assert second.weights is None
    else:
        assert second.weights is not None
        np.testing.assert_array_equal(first.weights, second.weights)
    assert first.metrics() == second.metrics()
