"""Synchronous scoring rounds: every rank scores its share of a pool, then one selection.

JEST scores a super-batch with the current learner before choosing from it.
With several ranks, rank ``r`` scores the ``r``-th contiguous slice of the
pool; the selection is made once all slices are in, and every rank then
receives its part of it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

from batchcraft.batcher.config import Position
from batchcraft.batcher.errors import SessionTimeoutError
from batchcraft.batcher.order import rank_slice


class ScoringRound:
    """One pool waiting for the scores of all ranks."""

    def __init__(self, round_id: int, position: Position, candidates: np.ndarray, world_size: int):
        self.round_id = round_id
        self.position = position
        self.candidates = candidates
        self.world_size = world_size
        self._scored: set[int] = set()
        self._condition = threading.Condition()

    def slice_for(self, rank: int) -> np.ndarray:
        """Dataset positions rank ``rank`` must score."""
        return self.candidates[rank_slice(len(self.candidates), rank, self.world_size)]

    def mark_scored(self, rank: int) -> None:
        """Record that ``rank`` has reported its scores."""
        with self._condition:
            self._scored.add(rank)
            self._condition.notify_all()

    @property
    def complete(self) -> bool:
        """Whether every rank has scored its slice."""
        with self._condition:
            return len(self._scored) == self.world_size

    def wait(self, should_stop: Callable[[], bool], timeout: float) -> bool:
        """Block until complete; False if ``should_stop()`` turned true first.

        Raises:
            SessionTimeoutError: if the other ranks did not score within ``timeout`` s.
        """
        deadline = time.monotonic() + timeout
        with self._condition:
            while len(self._scored) < self.world_size:
                if should_stop():
                    return False
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SessionTimeoutError(
                        f"scoring round {self.round_id} at epoch {self.position.epoch} step "
                        f"{self.position.step}: {self._missing()} did not score within {timeout} s"
                    )
                self._condition.wait(min(remaining, 0.2))
        return True

    def _missing(self, shown: int = 8) -> str:
        """The ranks that have not scored, the first ``shown`` of them named (the world
        size is a client's number: nothing here walks all of it)."""
        count = self.world_size - len(self._scored)
        first: list[int] = []
        rank = 0
        while len(first) < min(shown, count):
            if rank not in self._scored:
                first.append(rank)
            rank += 1
        more = f" and {count - len(first)} more" if count > len(first) else ""
        return f"ranks {first}{more}"
