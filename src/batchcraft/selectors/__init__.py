"""Batch selection policies: given a pool of candidate rows, pick the next mini-batch.

Registered selectors (`SELECTORS`), each named after the paper it implements:

- ``uniform``: random rows (baseline).
- ``coreset``: CREST weighted facility-location medoids; CoLM small-source and Adam options.
- ``concept``: CABS concept-aware sampling, diversity (DM) or frequency (FM) maximisation.
- ``hard_negative``: NGAME clustered batches with false-negative masks (epoch-level).
- ``jest``: JEST joint selection by pairwise learnability, in chunks.
- ``jest_independent``: JEST's ablation, per-example learnability (top-k or softmax).

Usage::

    from batchcraft.selectors import SELECTORS, get_selector, Pool
    selector = get_selector("uniform")
    selection = selector.select(pool, batch_size, np.random.default_rng(seed))
    selection.indices, selection.weights, selection.info

See `batchcraft.selectors.base` for how a batcher drives selectors (pool
sizes, required columns, epoch-level planning) and `batchcraft.selectors.pool`
for the columns a `Pool` can carry.
"""

from batchcraft.selectors.base import (
    BaseSelector,
    EpochPlanner,
    MissingColumnsError,
    Selection,
    Selector,
)
from batchcraft.selectors.concept import ConceptSelector
from batchcraft.selectors.coreset import CoresetSelector
from batchcraft.selectors.hard_negative import HardNegativeSelector
from batchcraft.selectors.jest import JestIndependentSelector, JestSelector
from batchcraft.selectors.pool import FEEDBACK_COLUMNS, ROW_COLUMNS, Pool
from batchcraft.selectors.registry import SELECTORS, get_selector
from batchcraft.selectors.uniform import UniformSelector

__all__ = [
    "FEEDBACK_COLUMNS",
    "ROW_COLUMNS",
    "SELECTORS",
    "BaseSelector",
    "ConceptSelector",
    "CoresetSelector",
    "EpochPlanner",
    "HardNegativeSelector",
    "JestIndependentSelector",
    "JestSelector",
    "MissingColumnsError",
    "Pool",
    "Selection",
    "Selector",
    "UniformSelector",
    "get_selector",
]
