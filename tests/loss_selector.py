"""A feedback-driven selector for tests of the batcher and the service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from batchcraft.selectors import BaseSelector, Pool, Selection


@dataclass(frozen=True)
class TopLossSelector(BaseSelector):
    """The half of a pool with the highest reported learner loss, plus a per-row info mask."""

    name: ClassVar[str] = "test_top_loss"

    @property
    def required_columns(self) -> frozenset[str]:
        return frozenset({"learner_losses"})

    @property
    def pool_factor(self) -> float:
        return 2.0

    def _select(self, pool: Pool, batch_size: int, rng: np.random.Generator) -> Selection:
        assert pool.learner_losses is not None
        order = np.argsort(-pool.learner_losses, kind="stable")[:batch_size]
        return Selection(order, None, {"selector": self.name, "mask": np.ones(len(order), bool)})
