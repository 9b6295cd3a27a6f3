"""`uniform`: the baseline — a random batch of the pool, no columns needed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from batchcraft.selectors.base import BaseSelector, Selection
from batchcraft.selectors.pool import Pool


@dataclass(frozen=True)
class UniformSelector(BaseSelector):
    """Uniformly random rows of the pool, without replacement (all of them, in pool order,
    when the batch takes the whole pool: the batcher's pools are already random draws).

    No paper: this is the baseline every other selector is measured against.
    With ``pool_size(batch_size) == batch_size`` and a batcher that draws
    pools without replacement, every row is served exactly once per epoch.

    Columns: none.

    Example:
        >>> selector = UniformSelector()
        >>> pool = Pool(ids=np.array(["a", "b", "c"]))
        >>> selection = selector.select(pool, 2, np.random.default_rng(0))
        >>> len(selection)
        2
    """

    name: ClassVar[str] = "uniform"

    def whole_pool(self, pool_size: int) -> Selection:
        """All rows in pool order: a pool is already a random draw, reshuffling adds nothing."""
        return Selection(np.arange(pool_size), None, self._info(pool_size))

    def _select(self, pool: Pool, batch_size: int, rng: np.random.Generator) -> Selection:
        if batch_size == len(pool):
            return self.whole_pool(batch_size)
        indices = rng.permutation(len(pool))[:batch_size]
        return Selection(indices, None, self._info(len(pool)))

    def _info(self, pool_size: int) -> dict[str, object]:
        return {"selector": self.name, "pool_size": pool_size}
