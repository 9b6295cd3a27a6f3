"""When a client reconnects: a budget of attempts per outage, with exponential backoff.

A server that restarts (or fails over) answers UNAVAILABLE; the client then
resumes in place, where its last received batch left it. The budget is per
outage, not per run: a batch received since the last failure restores it.

A session the server ended because the client left it idle (the trainer
paused, e.g. to evaluate, longer than the server's idle timeout) is no outage:
the client resumes it whatever its budget (`ended_idle`).
"""

from __future__ import annotations

import logging
import time

import grpc

from batchcraft.service.wire.channel import SESSION_END_KEY, SESSION_IDLE

LOG = logging.getLogger("batchcraft.client")
MAX_BACKOFF_SECONDS = 2.0


def ended_idle(error: grpc.RpcError) -> bool:
    """Whether the server ended the session because its client sent nothing for the
    server's idle timeout (it says so in the trailing metadata)."""
    trailing = getattr(error, "trailing_metadata", None)
    metadata = trailing() if callable(trailing) else None
    return any(key == SESSION_END_KEY and value == SESSION_IDLE for key, value in metadata or ())


class ReconnectBudget:
    """Decides whether a failed session is retried, and waits before the retry.

    Args:
        attempts: retries allowed in one outage (0: never retry).
    """

    def __init__(self, attempts: int) -> None:
        self.attempts = attempts
        self._used = 0

    def retry(self, error: grpc.RpcError, progressed: bool) -> bool:
        """Whether to reconnect after a session failed with ``error``; sleeps first if so.

        Args:
            error: the failed call.
            progressed: whether the session received a batch before it failed.
        """
        if ended_idle(error):  # the trainer paused longer than the server waits for it
            LOG.info("the server ended an idle session; resuming")
            return True
        if progressed:
            self._used = 0  # the budget is per outage, not per run
        code = error.code()  # type: ignore[attr-defined]
        if code != grpc.StatusCode.UNAVAILABLE or self._used >= self.attempts:
            return False
        self._used += 1
        time.sleep(min(MAX_BACKOFF_SECONDS, 0.1 * 2**self._used))
        return True
