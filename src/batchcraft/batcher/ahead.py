"""What makes a server's selections before they are asked for: look-ahead workers
(`batchcraft.batcher.lookahead`) and epoch plans (`batchcraft.batcher.plans`)."""

from __future__ import annotations

from collections.abc import Sequence

from batchcraft.batcher.job import Job
from batchcraft.batcher.lookahead import Lookahead
from batchcraft.batcher.plans import PlanInfo, attach_plan


class AheadOfDemand:
    """Attaches the workers and the plans to every job a registry creates.

    Args:
        lookahead: the selection workers; None: selections on the request path.
        plans: the epoch plans a job may be served from.
    """

    def __init__(self, lookahead: Lookahead | None = None, plans: Sequence[PlanInfo] = ()):
        self.lookahead = lookahead
        self.plans = list(plans)

    def __call__(self, job: Job) -> None:
        if self.lookahead is not None:
            self.lookahead.attach(job)
        attach_plan(job, self.plans)

    def close(self) -> None:
        """Stop the workers."""
        if self.lookahead is not None:
            self.lookahead.close()
