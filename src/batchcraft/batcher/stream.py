"""`RankStream`: one rank's batches of a job, as a stream that can be saved and resumed.

In the manner of torchdata.nodes: `RankStream.reset` places the stream (at
the start, or at a saved state), `RankStream.next` returns the next batch,
`RankStream.state` is what `reset` needs to continue exactly after the
batches returned so far. Everyone who walks a rank's batches (the service
session, the benchmarks, the tests) walks them through this class.

The stream owns the write-ahead rule for selections that depend on feedback:
before such a selection leaves the stream, the job is saved (``persist``,
e.g. `JobRegistry.persist_selections`), so that after a crash every rank
still receives its part of the same selection.

Example:
    >>> stream = RankStream(job, rank=0, num_epochs=1)     # doctest: +SKIP
    >>> first = stream.next()                               # doctest: +SKIP
    >>> saved = stream.state()                              # {"epoch": 0, "step": 1}
    >>> stream.reset(saved)                                 # continues with step 1
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from batchcraft.batcher.config import SCORE_AHEAD_STEPS, Position
from batchcraft.batcher.errors import FeedbackError
from batchcraft.batcher.feedback_sequences import Numbered
from batchcraft.batcher.job import Job
from batchcraft.batcher.pools import uses_feedback
from batchcraft.batcher.rounds import ScoringRound
from batchcraft.batcher.selections import RankBatch
from batchcraft.errors import ConfigError, truncated_repr

Persist = Callable[[Job], None]
STATE_KEYS = ("epoch", "step")
SERVED_KEPT = 64
"""This rank's latest batches a report is first matched against: a trainer reports the
rows of a batch it was served, and matching them costs less than hashing their ids."""


class RankStream:
    """Rank ``rank``'s batches of ``job``, resumable from `state`.

    Args:
        job: the job (its selections are shared by all ranks).
        rank: this rank, in ``[0, job.config.world_size)``.
        num_epochs: stop after this many epochs counted from epoch 0; 0 is endless.
        persist: called with the job after batches were selected and before they
            are returned (the write-ahead save of feedback-dependent selections).
    """

    def __init__(
        self, job: Job, rank: int, *, num_epochs: int = 0, persist: Persist | None = None
    ) -> None:
        if not 0 <= rank < job.config.world_size:
            raise ConfigError(f"rank={rank} must be in [0, {job.config.world_size})")
        if num_epochs < 0:
            raise ConfigError(f"num_epochs={num_epochs} must be >= 0 (0 = endless)")
        self.job = job
        self.rank = rank
        self.num_epochs = num_epochs
        self._persist = persist
        self._position = Position()
        self.selection_seconds: list[float] = []  # of each batch of the latest `take`
        self._served: deque[tuple[str, np.ndarray]] = deque(maxlen=SERVED_KEPT)
        self._reports_used = uses_feedback(job.selector)  # reports of served rows follow

    @property
    def position(self) -> Position:
        """Where the next batch comes from."""
        return self._position

    def reset(self, state: Mapping[str, Any] | Position | None = None) -> None:
        """Continue from ``state`` (a `state` result or a `Position`); None: the start.

        A position past its epoch's last step continues with the next epoch.

        Raises:
            ConfigError: ``state`` is not a state of a stream.
        """
        self._position = self.job.normalize(_position_of(state))

    def state(self) -> dict[str, int]:
        """The position of the next batch, as plain JSON (what `reset` takes)."""
        return {"epoch": self._position.epoch, "step": self._position.step}

    @property
    def exhausted(self) -> bool:
        """Whether the requested epochs are all served."""
        return self.num_epochs != 0 and self._position.epoch >= self.num_epochs

    def scoring_round(self) -> ScoringRound | None:
        """The synchronous scoring round the next batch waits for, if any."""
        if self.exhausted or not self.job.needs_scores:
            return None
        return self.job.scoring_round(self._position)

    def rounds_ahead(self) -> list[ScoringRound]:
        """The rounds of the `SCORE_AHEAD_STEPS` steps after the next batch that this rank
        may score now (``scoring="ahead"``; none otherwise), earliest first."""
        if self.job.config.scoring != "ahead" or not self.job.needs_scores:
            return []
        rounds, position = [], self._position
        for _ in range(SCORE_AHEAD_STEPS):
            position = self.job.next_position(position)
            if self.num_epochs and position.epoch >= self.num_epochs:
                break
            found = self.job.scoring_round(position)
            if found is not None:
                rounds.append(found)
        return rounds

    def next(self) -> RankBatch:
        """The next batch.

        Raises:
            StopIteration: the requested epochs are served.
        """
        (batch,) = self.take(1)
        return batch

    def take(self, count: int) -> list[RankBatch]:
        """Up to ``count`` consecutive batches (fewer at the end of the last epoch).

        The job is persisted once, after all of them were selected.

        Raises:
            StopIteration: the stream is exhausted.
        """
        if self.exhausted:
            raise StopIteration
        batches: list[RankBatch] = []
        self.selection_seconds = []
        while len(batches) < max(1, count) and not self.exhausted:
            started = time.perf_counter()
            batches.append(self.job.rank_batch(self._position, self.rank))
            if self._reports_used and len(batches[-1].positions):
                first = self.job.dataset.ids_at(batches[-1].positions[:1])[0]
                self._served.append((first, batches[-1].positions))
            self.selection_seconds.append(time.perf_counter() - started)
            self._position = self.job.next_position(self._position)
        if self._persist is not None:
            self._persist(self.job)
        return batches

    def report(
        self,
        ids: list[str],
        rows: dict[str, np.ndarray],
        scalars: Mapping[str, float] | None = None,
        vectors: Mapping[str, np.ndarray] | None = None,
        numbered: Numbered | None = None,
    ) -> np.ndarray:
        """Record the trainer's feedback on the rows ``ids``; returns their positions.

        Args:
            ids: served row ids.
            rows: per-row feedback arrays by name (`batchcraft.dataset.fields.ROW_FEEDBACK`).
            scalars: pool-level numbers (``SCALAR_FEEDBACK``).
            vectors: pool-level vectors (``VECTOR_FEEDBACK``).
            numbered: the report's number, if its client numbers them (one the job
                holds already is not applied again, `feedback_sequences`).

        Raises:
            FeedbackError: an id is not served, a name is unknown, a shape is wrong,
                or a value is NaN or infinite (a trainer's NaN loss is a diverged
                step, not "no report"): then nothing of the report is recorded.
        """
        check_finite(ids, rows, scalars or {}, vectors or {})
        positions = self._served_positions(ids)
        if positions is None:
            positions = self.job.dataset.positions_of(ids)
        unknown = [truncated_repr(ids[i]) for i in np.flatnonzero(positions < 0)[:3]]
        if unknown:
            raise FeedbackError(f"feedback names ids that are not served: [{', '.join(unknown)}]")
        self.job.feedback.update(
            positions, rows, dict(scalars or {}), dict(vectors or {}), numbered
        )
        return positions

    def score(
        self,
        scoring: ScoringRound,
        round_id: int,
        ids: list[str],
        rows: dict[str, np.ndarray],
        scalars: Mapping[str, float] | None = None,
        vectors: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Record this rank's scores of ``scoring``'s candidates (all of them, no other row).

        Raises:
            FeedbackError: the scores are for another round, miss a candidate or
                name another row (see also `report`).
        """
        if round_id != scoring.round_id:
            raise FeedbackError(
                f"scores are for round {round_id}, expected round {scoring.round_id}"
            )
        expected = scoring.slice_for(self.rank)
        positions = self.report(ids, rows, scalars, vectors)
        if sorted(positions.tolist()) != sorted(expected.tolist()):
            raise FeedbackError(
                f"scores of round {scoring.round_id} cover {len(positions)} rows; they must "
                f"cover exactly the {len(expected)} candidates sent"
            )
        scoring.mark_scored(self.rank)

    def _served_positions(self, ids: Sequence[str]) -> np.ndarray | None:
        """The positions of ``ids`` when they are exactly the rows of one of this rank's
        latest batches, in order (the usual report); None otherwise."""
        if not len(ids):
            return None
        for first, positions in list(self._served):  # a copy: `take` appends meanwhile
            same_start = first == ids[0] and len(positions) == len(ids)
            if same_start and self.job.dataset.ids_at(positions) == list(ids):
                return positions
        return None

    def following(self, batch: RankBatch) -> Position:
        """The position after ``batch`` (what a trainer that received it has consumed)."""
        return self.job.next_position(batch.position)

    def __iter__(self) -> Iterator[RankBatch]:
        return self

    def __next__(self) -> RankBatch:
        return self.next()


def check_finite(
    ids: list[str],
    rows: Mapping[str, np.ndarray],
    scalars: Mapping[str, float],
    vectors: Mapping[str, np.ndarray],
) -> None:
    """Refuse a report holding NaN or ±inf, naming the column and its first bad row.

    Raises:
        FeedbackError: naming the value, the column, the row and its id.
    """
    for name, values in rows.items():
        array = np.asarray(values, dtype=np.float32)
        bad = ~np.isfinite(array.reshape(len(array), -1)).all(axis=1) if array.ndim else None
        if bad is not None and bad.any():
            row = int(np.argmax(bad))
            shown = truncated_repr(ids[row]) if row < len(ids) else "?"
            raise FeedbackError(
                f"feedback {truncated_repr(name)} has a NaN or infinite value in row {row} "
                f"(id {shown}) and {int(bad.sum()) - 1} more row(s); values must be finite "
                "(nothing of this report was recorded)"
            )
    pool_level = {**scalars, **{k: np.asarray(v, np.float32) for k, v in vectors.items()}}
    for name, value in pool_level.items():
        if not np.isfinite(np.asarray(value, dtype=np.float64)).all():
            raise FeedbackError(
                f"feedback {truncated_repr(name)} is NaN or infinite; values must be finite "
                "(nothing of this report was recorded)"
            )


def _position_of(state: Mapping[str, Any] | Position | None) -> Position:
    if state is None:
        return Position()
    if isinstance(state, Position):
        return state
    if not isinstance(state, Mapping) or set(state) != set(STATE_KEYS):
        raise ConfigError(
            f"a stream state is a mapping with keys {list(STATE_KEYS)}, got {truncated_repr(state)}"
        )
    values = [state[key] for key in STATE_KEYS]
    if not all(isinstance(value, int) and not isinstance(value, bool) for value in values):
        raise ConfigError(f"stream state values must be integers, got {truncated_repr(state)}")
    return Position(*values)
