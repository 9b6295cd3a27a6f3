"""`Job`: the selections of one training job, shared by its ranks.

A job owns the serving order (`batchcraft.batcher.order`), the selector, the
trainer's feedback table and one cursor per rank. Selections of selectors
that ignore feedback are pure functions of (seed, epoch, step) and are
recomputed on demand. Selections that depend on feedback (or on an epoch
plan built from it) are computed once, cached until every rank has moved
past them and saved with the job state, so all ranks — also after a server
restart — receive disjoint parts of the same selection.
"""

from __future__ import annotations

import logging
import threading

import numpy as np

from batchcraft.batcher.config import JobConfig, Position
from batchcraft.batcher.estimates import FeedbackEstimator
from batchcraft.batcher.feedback import FeedbackTable, PoolFeedback
from batchcraft.batcher.order import EpochLayout, epoch_permutation, selection_rng
from batchcraft.batcher.pools import (
    PoolBuilder,
    check_dataset_columns,
    selector_fields,
    uses_feedback,
)
from batchcraft.batcher.rounds import ScoringRound
from batchcraft.batcher.selections import GlobalSelection, RankBatch, SelectionSource, rank_part
from batchcraft.batcher.served_dataset import CuratedDataset
from batchcraft.dataset.fields import FEEDBACK_FIELDS
from batchcraft.errors import ConfigError, DatasetError
from batchcraft.selectors import (
    BaseSelector,
    MissingColumnsError,
    Selection,
    get_selector,
)

LOG = logging.getLogger("batchcraft.batcher")
_PERMUTATIONS_KEPT = 3


class Job:
    """Selections, feedback and per-rank cursors of one job (thread-safe)."""

    def __init__(self, job_id: str, config: JobConfig, dataset: CuratedDataset) -> None:
        if dataset.num_rows == 0:
            raise DatasetError(f"dataset {dataset.name!r} has no kept rows to serve")
        self.job_id = job_id
        self.config = config
        self.dataset = dataset
        self.selector: BaseSelector = get_selector(config.selector, **config.selector_params)
        self.fields = selector_fields(self.selector)
        check_dataset_columns(self.selector, dataset)
        self.pure = not uses_feedback(self.selector) and not self.selector.epoch_level
        self.cursors: dict[int, Position] = {}
        self.finished_ranks: set[int] = set()  # served all their epochs (`job_lifetimes`)
        self.selections: dict[Position, GlobalSelection] = {}
        self.plans: dict[int, list[np.ndarray]] = {}
        self.rounds: dict[Position, ScoringRound] = {}
        self._pools = PoolBuilder(dataset)
        self.feedback = FeedbackTable(dataset.num_rows, self._estimator())
        self.fallbacks = 0  # selections drawn uniformly while no feedback existed
        self._dataset_fields = self._pools.dataset_fields(self.fields)
        self._lock = threading.RLock()
        self._next_round = 0
        self.selections_made = 0
        self.cursor_moves = 0
        self._permutations: dict[int, np.ndarray] = {}
        pool_size = self.selector.pool_size(config.global_batch_size)
        self.layout = EpochLayout(
            dataset.num_rows, pool_size, config.global_batch_size, config.last_batch
        )
        self.layout.check_serves_a_batch(dataset.name, epoch_level=self.selector.epoch_level)
        self.ahead: SelectionSource | None = None  # workers or a plan (`SelectionSource`)
        self.plan_used: bool | None = None  # None: the server has no plans (`attach_plan`)

    @property
    def selects_ahead(self) -> bool:
        """Whether selections may be made ahead of demand: without a scoring round, and
        more than the uniform draw that needs no pool (epoch plans included)."""
        if self.needs_scores:
            return False
        return self.selector.whole_pool(self.config.global_batch_size) is None

    def _estimator(self) -> FeedbackEstimator | None:
        if not uses_feedback(self.selector):
            return None
        return FeedbackEstimator(self._pools.curated, self._pools.clusters(), self.config.seed)

    @property
    def revision(self) -> tuple[int, int]:
        """Changes to what ``state.json`` holds (cursor moves; selections and plans made):
        equal revisions, equal files. The feedback table counts its own updates."""
        return (self.cursor_moves, self.selections_made)

    @property
    def needs_scores(self) -> bool:
        """Whether each selection waits for a synchronous scoring round."""
        return self.config.scoring != "async" and uses_feedback(self.selector)

    def steps_in(self, epoch: int) -> int:
        """Global steps of ``epoch`` (the same for every rank)."""
        if not self.selector.epoch_level:
            return self.layout.steps
        return len(self._plan(epoch))

    def next_position(self, position: Position) -> Position:
        """The step after ``position`` (wrapping into the next epoch)."""
        if position.step + 1 < self.steps_in(position.epoch):
            return Position(position.epoch, position.step + 1)
        return Position(position.epoch + 1, 0)

    def normalize(self, position: Position) -> Position:
        """``position`` itself, or the next epoch's start if it is past its epoch's end."""
        if position.step >= self.steps_in(position.epoch):
            return Position(position.epoch + 1, 0)
        return position

    def pool_positions(self, position: Position) -> np.ndarray:
        """Dataset positions of the candidates of ``position``."""
        if self.selector.epoch_level:
            return self._plan(position.epoch)[position.step]
        start, stop = self.layout.pool_bounds(position.step)
        return self._permutation(position.epoch)[start:stop]

    def selection(self, position: Position) -> GlobalSelection:
        """The global selection at ``position`` (cached when it depends on feedback), made
        ahead of demand when a look-ahead is attached (`batchcraft.batcher.lookahead`)."""
        ahead = self.ahead
        if self.pure:
            found = ahead.take(position) if ahead is not None else None
            if found is None:
                found = self._select(position)
                if ahead is not None:
                    ahead.keep(found)  # the other ranks ask for it too
        else:
            with self._lock:
                found = self.selections.get(position)
                if found is None:
                    found = ahead.take(position) if ahead is not None else None
                    found = found or self._select(position)
                    self.selections[position] = found
                    self.selections_made += 1
                    self.rounds.pop(position, None)
        if ahead is not None:
            ahead.after(position)
        return found

    def compute_selection(self, position: Position, feedback: PoolFeedback | None = None,
                          candidates: np.ndarray | None = None) -> GlobalSelection:  # fmt: skip
        """The selection at ``position`` made now, uncached, from ``feedback`` (the pool's
        feedback fields) instead of the job's table, and from ``candidates`` (the pool's
        dataset positions) instead of the job's own order or epoch plan, when given."""
        return self._select(position, feedback, candidates)

    def has_feedback(self) -> bool:
        """Whether the trainer reported feedback the selector uses."""
        return self.feedback.holds(self.fields & FEEDBACK_FIELDS)

    def feedback_for(self, position: Position) -> PoolFeedback | None:
        """The feedback fields of the pool at ``position``; None while the selector would
        fall back to a uniform draw (no feedback reported yet)."""
        feedback = self._feedback_fields(self.pool_positions(position))
        try:
            self.selector.check_columns(self._dataset_fields | frozenset(feedback.fields))
        except MissingColumnsError:
            return None
        return feedback

    def rank_batch(self, position: Position, rank: int) -> RankBatch:
        """Rank ``rank``'s contiguous part of the selection at ``position``."""
        return rank_part(self.selection(position), rank, self.config.world_size)

    def scoring_round(self, position: Position) -> ScoringRound | None:
        """The round to join before ``position`` can be selected; None if already selected."""
        with self._lock:
            if position in self.selections:
                return None
            found = self.rounds.get(position)
            if found is None:
                found = ScoringRound(
                    self._next_round,
                    position,
                    self.pool_positions(position),
                    self.config.world_size,
                )
                self._next_round += 1
                self.rounds[position] = found
            return found

    def advance(self, rank: int, next_position: Position) -> None:
        """Record that ``rank`` consumed everything before ``next_position``.

        Costs the ranks seen, never the world size (a client's number): a rank
        without a cursor is still at the start, so none is passed by all.
        """
        with self._lock:
            current = self.cursors.get(rank)
            if current is None or next_position > current:
                self.cursors[rank] = next_position
                self.cursor_moves += 1
            everyone = len(self.cursors) == self.config.world_size
            low = min(self.cursors.values()) if everyone else Position()
            for done in [p for p in self.selections if p < low]:
                del self.selections[done]
            for epoch in [e for e in self.plans if e < low.epoch]:
                del self.plans[epoch]

    def _permutation(self, epoch: int) -> np.ndarray:
        # Recomputing costs O(rows) per batch; ranks work on one or two epochs at a time.
        # Least recently used out: a rank that goes back (a resume) must not evict the
        # epoch it just asked for.
        with self._lock:
            found = self._permutations.pop(epoch, None)
            if found is None:
                found = epoch_permutation(self.dataset.num_rows, self.config.seed, epoch)
            self._permutations[epoch] = found
            while len(self._permutations) > _PERMUTATIONS_KEPT:
                del self._permutations[next(iter(self._permutations))]
            return found

    def _select(self, position: Position, known: PoolFeedback | None = None,
                candidates: np.ndarray | None = None) -> GlobalSelection:  # fmt: skip
        candidates = self.pool_positions(position) if candidates is None else candidates
        count = self._select_count(position, len(candidates))
        whole = self.selector.whole_pool(count) if count == len(candidates) else None
        if whole is not None:  # no per-step generator or Pool needed (uniform)
            return GlobalSelection(position, candidates[whole.indices], None, dict(whole.info))
        rng = selection_rng(self.config.seed, position.epoch, position.step)
        feedback = known if known is not None else self._feedback_fields(candidates)
        try:  # before gathering the pool: during the warm-up it would be thrown away
            self.selector.check_columns(self._dataset_fields | frozenset(feedback.fields))
        except MissingColumnsError as exc:
            if not FEEDBACK_FIELDS.intersection(exc.missing):
                raise ConfigError(str(exc)) from exc
            chosen = self._fallback(exc, rng, len(candidates), count)
        else:
            used = self.selector.columns_used(self._dataset_fields | frozenset(feedback.fields))
            given = {name: value for name, value in feedback.fields.items() if name in used}
            # ids only when nothing else gives the pool its length: no selector reads them
            pool = self._pools.build(candidates, used or frozenset({"ids"}), given)
            chosen = self.selector.select(pool, count, rng)
            chosen.info.update(feedback.info())
        return GlobalSelection(
            position, candidates[chosen.indices], chosen.weights, dict(chosen.info)
        )

    def _fallback(
        self, missing: MissingColumnsError, rng: np.random.Generator, size: int, count: int
    ) -> Selection:
        """No feedback reported yet (async warm-up): a uniform draw of the same size,
        counted, logged once per job and marked in the batch's info."""
        with self._lock:
            self.fallbacks += 1
            first = self.fallbacks == 1
        if first:
            fields = {"job": self.job_id, "selector": self.selector.name}
            fields["missing"] = ", ".join(missing.missing)
            LOG.warning(
                "feedback_fallback: uniform batches until the trainer reports feedback",
                extra={"event": "feedback_fallback", **fields},
            )
        info = {"selector": "uniform", "fallback_from": self.selector.name}
        return Selection(rng.permutation(size)[:count], None, info)

    def _feedback_fields(self, positions: np.ndarray) -> PoolFeedback:
        return self.feedback.pool_fields(positions, self.fields & FEEDBACK_FIELDS)

    def _select_count(self, position: Position, pool_length: int) -> int:
        if self.selector.epoch_level:
            return pool_length
        return self.layout.select_count(position.step)

    def _plan(self, epoch: int) -> list[np.ndarray]:
        with self._lock:
            plan = self.plans.get(epoch)
            if plan is None:
                made = self.ahead.epoch_plan(epoch) if self.ahead is not None else None
                plan = made if made is not None else self.build_epoch_plan(epoch)
                self.plans[epoch] = plan
                self.selections_made += 1
            return plan

    def build_epoch_plan(self, epoch: int) -> list[np.ndarray]:
        """An epoch-level selector's batches of ``epoch`` made now, from the feedback as it
        stands (uncached: `pool_positions` caches the plan it serves)."""
        everything = np.arange(self.dataset.num_rows, dtype=np.int64)
        pool = self._pools.build(everything, self.fields, self._feedback_fields(everything).fields)
        rng = selection_rng(self.config.seed, epoch, 1 << 31)
        plan_epoch = getattr(self.selector, "plan_epoch")  # noqa: B009 - epoch-level only
        batches = [
            np.asarray(b, np.int64)
            for b in plan_epoch(pool, self.config.global_batch_size, rng, epoch=epoch)
        ]
        if self.config.last_batch == "drop":
            batches = [b for b in batches if len(b) == self.config.global_batch_size]
        return [b for b in batches if len(b) > 0]
