"""Flow control of one session: batches sent and not yet acknowledged.

At most ``window`` batches are sent and not acknowledged, so a stalled
client holds the server's memory for its session to a few batches: the
session waits for credit instead of producing more. Credit is counted in
batches; a client returns it with one ack for several batches.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

POLL_SECONDS = 0.2
"""How often a wait looks again at its stop condition."""


class Credit:
    """The unacknowledged batches of one session (thread-safe).

    Args:
        window: the most batches sent and not acknowledged.
        on_change: called with the new count whenever it changes (a metric).
    """

    def __init__(self, window: int, on_change: Callable[[int], None]) -> None:
        self.window = window
        self._on_change = on_change
        self._in_flight = 0
        self._condition = threading.Condition()

    @property
    def in_flight(self) -> int:
        """Batches sent and not acknowledged."""
        with self._condition:
            return self._in_flight

    @property
    def available(self) -> int:
        """Batches that may be sent now."""
        with self._condition:
            return self.window - self._in_flight

    def spend(self, count: int) -> None:
        """``count`` batches were sent."""
        with self._condition:
            self._in_flight += count
            self._on_change(self._in_flight)

    def refund(self, count: int) -> None:
        """``count`` batches were acknowledged."""
        with self._condition:
            self._in_flight = max(0, self._in_flight - count)
            self._condition.notify_all()
            self._on_change(self._in_flight)

    def wake(self) -> None:
        """Make waiting threads look at their stop condition now."""
        with self._condition:
            self._condition.notify_all()

    def wait_available(self, stop: Callable[[], bool]) -> bool:
        """Block until a batch may be sent (True) or ``stop()`` holds (False)."""
        with self._condition:
            while self._in_flight >= self.window:
                if stop():
                    return False
                self._condition.wait(POLL_SECONDS)
        return True

    def wait_returned(self, stop: Callable[[], bool]) -> None:
        """Block until every batch is acknowledged or ``stop()`` holds."""
        with self._condition:
            while self._in_flight > 0 and not stop():
                self._condition.wait(POLL_SECONDS)
