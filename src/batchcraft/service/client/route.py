"""Where a client's sessions go: its own target, or the replica that owns its job.

Replicas that share a checkpoint directory serve each job from one of them,
the holder of the job's lease (`batchcraft.batcher.leases`). A replica asked
for a job another one holds ends the session UNAVAILABLE with trailing
metadata naming the owner (`SESSION_MOVED`, `JOB_OWNER_KEY`): the client opens
its next session there, at once, resuming from its own position as after any
reconnect. When the owner fails, the client goes back to its own target (the
list of replicas), under the reconnect budget: a survivor redirects it to the
dead owner until that misses its renewals, then tells the client to come back
when the lease expires (`RETRY_AFTER_KEY`), and takes the job over then.
"""

from __future__ import annotations

import logging
import time

import grpc

from batchcraft.service.client.connection import Connection
from batchcraft.service.client.reconnect import ReconnectBudget
from batchcraft.service.wire.channel import (
    JOB_OWNER_KEY,
    RETRY_AFTER_KEY,
    SESSION_END_KEY,
    SESSION_MOVED,
)

LOG = logging.getLogger("batchcraft.client")
MAX_REDIRECTS = 4
"""Redirects followed in a row without a failed reconnect; more (replicas that disagree on
the owner for a moment, while a lease changes hands) wait as a failed reconnect does."""
MAX_WAIT_SECONDS = 60.0
"""Longest wait for a lease to expire that a client accepts from a server, and longest
time it goes on following redirects to owners that fail, outside its reconnect budget."""
OWNER_FAILED_WAIT = 0.25
"""Seconds between an owner failing and asking the client's own target again."""


def moved_to(error: grpc.RpcError) -> tuple[str, float] | None:
    """If the server redirected the session: the owner's ``host:port`` ("" when there is
    none to go to) and the seconds its lease has left; else None."""
    trailing = getattr(error, "trailing_metadata", None)
    metadata = dict(trailing() or ()) if callable(trailing) else {}
    if metadata.get(SESSION_END_KEY) != SESSION_MOVED:
        return None
    try:
        left = min(MAX_WAIT_SECONDS, max(0.0, float(metadata.get(RETRY_AFTER_KEY, 0))))
    except ValueError:
        left = 0.0
    return str(metadata.get(JOB_OWNER_KEY, "")), left


class Route:
    """The connection a client's next session uses.

    Args:
        home: the client's own target (a replica, or a list of them).
    """

    def __init__(self, home: Connection) -> None:
        self.home = home
        self.owner: Connection | None = None
        self._redirects = 0
        self._redirected_at: float | None = None  # the first redirect of this outage

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
        if progressed:
            self._redirected_at = None
        moved = moved_to(error)
        if moved is not None and self._redirects < MAX_REDIRECTS:
            self._redirects += 1
            self._redirected_at = self._redirected_at or time.monotonic()
            address, left = moved
            self._go(address)
            if address:
                LOG.info("the job is served by %s; resuming there", address)
            else:  # its owner stopped renewing its lease: it is taken over once expired
                LOG.info("the job's owner is not answering; resuming in %.1f s", left)
                time.sleep(left + 0.05)
            return True
        self._redirects = 0
        sent_there = self.owner is not None
        self._go("")  # the owner failed, or none answers for the job: back to the list
        if sent_there and self._following(error):
            # the owner a replica sent it to died: the replicas learn it as the lease ages
            # (`RETRY_AFTER_KEY`), so ask them again soon, not after a growing backoff
            time.sleep(OWNER_FAILED_WAIT)
            return True
        return budget.retry(error, progressed)

    def _following(self, error: grpc.RpcError) -> bool:
        """Whether redirects of this outage began less than `MAX_WAIT_SECONDS` ago and
        ``error`` is UNAVAILABLE (the owner is gone, not refusing the session)."""
        since = self._redirected_at
        if since is None or time.monotonic() - since > MAX_WAIT_SECONDS:
            return False
        return bool(error.code() == grpc.StatusCode.UNAVAILABLE)  # type: ignore[attr-defined]

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
