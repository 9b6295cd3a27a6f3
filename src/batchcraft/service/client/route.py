"""Where a client's sessions go: its own target, or the replica that owns its job.

Replicas that share a checkpoint directory serve each job from one of them,
the holder of the job's lease (`batchcraft.batcher.leases`). A replica asked
for a job another one holds ends the session UNAVAILABLE with trailing
metadata naming the owner (`SESSION_MOVED`, `JOB_OWNER_KEY`): the client opens
its next session there, at once, resuming from its own position as after any
reconnect. When the owner fails, the client goes back to its own target (the
list of replicas), under the reconnect budget: a survivor redirects it to the
dead owner until the lease expires, then takes the job over.
"""

from __future__ import annotations

import logging

import grpc

from batchcraft.service.client.connection import Connection
from batchcraft.service.client.reconnect import ReconnectBudget
from batchcraft.service.wire.channel import JOB_OWNER_KEY, SESSION_END_KEY, SESSION_MOVED

LOG = logging.getLogger("batchcraft.client")
MAX_REDIRECTS = 4
"""Redirects followed in a row without a wait; more (replicas that disagree on the owner
for a moment, while a lease changes hands) wait as a failed reconnect does."""


def moved_to(error: grpc.RpcError) -> str | None:
    """The owner's ``host:port`` if the server redirected the session ("" when it did
    not know the owner); None if the session did not end with a redirect."""
    trailing = getattr(error, "trailing_metadata", None)
    metadata = dict(trailing() or ()) if callable(trailing) else {}
    if metadata.get(SESSION_END_KEY) != SESSION_MOVED:
        return None
    return str(metadata.get(JOB_OWNER_KEY, ""))


class Route:
    """The connection a client's next session uses.

    Args:
        home: the client's own target (a replica, or a list of them).
    """

    def __init__(self, home: Connection) -> None:
        self.home = home
        self.owner: Connection | None = None
        self._redirects = 0

    @property
    def current(self) -> Connection:
        """Where the next session opens: the owner a redirect named, else home."""
        return self.owner or self.home

    def recover(self, error: grpc.RpcError, budget: ReconnectBudget, progressed: bool) -> bool:
        """Whether to open the session again after it failed with ``error``, and where:
        at the owner a redirect names (at once), else at home after the budget's wait.

        Args:
            error: the failed call.
            budget: the reconnect budget (`ReconnectBudget.retry` waits before a retry).
            progressed: whether the session received a batch before it failed.
        """
        address = moved_to(error)
        if address is not None and self._redirects < MAX_REDIRECTS:
            self._redirects += 1
            LOG.info("the job is served by %s; resuming there", address or "another replica")
            self._go(address)
            return True
        self._redirects = 0
        self._go("")  # the owner failed, or none answers for the job: back to the list
        return budget.retry(error, progressed)

    def _go(self, address: str) -> None:
        """Send the next sessions to ``address`` ("": home)."""
        if self.owner is not None and self.owner.target == address:
            return
        if self.owner is not None:
            self.owner.close()
        home = self.home
        self.owner = (
            Connection(address, home.token, home.root_certificates, home.max_message_bytes)
            if address
            else None
        )

    def close(self) -> None:
        """Close both channels."""
        if self.owner is not None:
            self.owner.close()
        self.home.close()
