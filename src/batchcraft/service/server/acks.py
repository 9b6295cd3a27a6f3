"""What a session sent and the client has not acknowledged, and what an ack may name.

An ack is the client's word on what it received: it moves the job's cursor,
adds the batches to the provenance log and returns credit. So it is checked
against what the session sent before it changes anything: its position must
follow a batch sent and not yet acknowledged (or repeat the latest
acknowledged one), and its count must not pass the batches in flight. An ack
that names a position never sent (``Ack(next={2^64-1, 2^64-1})`` moved the
cursor past every epoch and was checkpointed) is the client's error.
"""

from __future__ import annotations

import collections
import threading
from typing import NamedTuple

from batchcraft.batcher.config import Position
from batchcraft.batcher.job import RankBatch
from batchcraft.errors import ConfigError


class Sent(NamedTuple):
    """What the provenance log needs of a batch sent and not yet acknowledged (not its
    payload: a stalled client must not pin it)."""

    batch_id: str
    batch: RankBatch
    selector: str
    following: Position


class SentBatches:
    """Batches a session sent and the client has not acknowledged, oldest first (at most
    the session's credit window of them)."""

    def __init__(self) -> None:
        self._sent: collections.deque[Sent] = collections.deque()
        self._acknowledged: Position | None = None  # the latest position an ack named
        self._lock = threading.Lock()

    def add(self, sent: list[Sent]) -> None:
        """Record batches before they are sent (an ack can then only come later)."""
        with self._lock:
            self._sent.extend(sent)

    def acknowledge(self, following: Position | None, count: int, in_flight: int) -> list[Sent]:
        """Check an ack of ``count`` batches (naming the client's next position
        ``following``, if it does) and remove and return the batches it covers: those
        before ``following``, else the oldest ``count``.

        Args:
            in_flight: the batches sent and not acknowledged, by the session's credit.

        Raises:
            ConfigError: ``count`` is above ``in_flight``, or ``following`` is not the
                position after a batch sent and not acknowledged, nor the latest one an
                ack named. Nothing is removed then.
        """
        with self._lock:
            if count > in_flight:
                raise ConfigError(
                    f"an ack of {count} batches, but {in_flight} are sent and not acknowledged"
                )
            if following is None:
                return [self._sent.popleft() for _ in range(min(count, len(self._sent)))]
            self._check_following(following)
            self._acknowledged = following
            done = []
            while self._sent and self._sent[0].following <= following:
                done.append(self._sent.popleft())
            return done

    def _check_following(self, following: Position) -> None:
        if following == self._acknowledged or any(s.following == following for s in self._sent):
            return
        after = [f"({s.following.epoch}, {s.following.step})" for s in self._sent]
        raise ConfigError(
            f"ack next=(epoch {following.epoch}, step {following.step}) is not the position "
            "after a batch this session sent and the client has not acknowledged "
            f"({', '.join(after[:3]) or 'none'}{' ...' if len(after) > 3 else ''})"
        )
