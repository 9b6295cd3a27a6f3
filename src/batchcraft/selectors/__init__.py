"""Batch selection policies: given a pool of candidate rows, pick the next mini-batch.

Usage::

    from batchcraft.selectors import SELECTORS, get_selector, Pool
    selector = get_selector("uniform")
    selection = selector.select(pool, batch_size, np.random.default_rng(seed))
    selection.indices, selection.weights, selection.info

See `batchcraft.selectors.base` for how a batcher drives selectors (pool
sizes, required columns, epoch-level planning) and `batchcraft.selectors.pool`
for the columns a `Pool` can carry.
"""

from batchcraft.selectors.base import BaseSelector, MissingColumnsError, Selection, Selector
from batchcraft.selectors.pool import FEEDBACK_COLUMNS, ROW_COLUMNS, Pool
from batchcraft.selectors.registry import SELECTORS, get_selector

__all__ = [
    "FEEDBACK_COLUMNS",
    "ROW_COLUMNS",
    "SELECTORS",
    "BaseSelector",
    "MissingColumnsError",
    "Pool",
    "Selection",
    "Selector",
    "get_selector",
]
