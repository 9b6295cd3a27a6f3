"""When a client reconnects: a budget of attempts per outage, with exponential backoff.

A server that restarts (or fails over) answers UNAVAILABLE; the client then
resumes in place, where its last received batch left it. The budget is per
outage, not per run: a batch received since the last failure restores it.
"""

from __future__ import annotations

import time

import grpc

MAX_BACKOFF_SECONDS = 2.0


class ReconnectBudget:
    """Decides whether a failed session is retried, and waits before the retry.

    Args:
        attempts: retries allowed in one outage (0: never retry).
    """

    def __init__(self, attempts: int) -> None:
        self.attempts = attempts
        self._used = 0

    def retry(self, code: grpc.StatusCode, progressed: bool) -> bool:
        """Whether to reconnect after a session failed with ``code``; sleeps first if so.

        Args:
            code: the status the session ended with.
            progressed: whether the session received a batch before it failed.
        """
        if progressed:
            self._used = 0  # the budget is per outage, not per run
        if code != grpc.StatusCode.UNAVAILABLE or self._used >= self.attempts:
            return False
        self._used += 1
        time.sleep(min(MAX_BACKOFF_SECONDS, 0.1 * 2**self._used))
        return True
