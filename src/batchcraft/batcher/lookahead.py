"""Selections computed ahead of demand, in worker processes on every core.

A selector that ignores feedback (``coreset`` on curated embeddings, ``concept``,
``hard_negative`` without learner embeddings) chooses each batch as a pure
function of (seed, epoch, step) and the dataset, so the selection a rank will
ask for next can be made before it asks, in another process: when a rank asks
for step ``s``, the job hands steps ``s+1 .. s+depth`` to a `Lookahead` pool and
the rank's next request finds its selection made (then it costs what a uniform
batch costs). A selection not made in time is made on the request path as
before, so the look-ahead only ever saves time; the batches are the same (the
worker runs the job's own selection code with the same seeded generator; a test
compares them).

Feedback selectors (``jest``, ``coreset`` with gradient sketches) select ahead
too, from the pool's feedback as it stands when the selection starts, but once
the trainer has reported only ``staleness`` steps ahead (`DEFAULT_STALENESS`):
such a selection misses what is reported in between. Before any feedback the
warm-up draw needs no worker; a selector whose feedback never comes (``coreset``
on curated embeddings) selects the full depth ahead. A selection made before the
job's first feedback is not used once feedback exists (the request path then
selects from it), so with staleness 0 the batches are exactly those of no
look-ahead. Uniform draws and synchronous scoring rounds are not selected ahead.

Epoch-level selectors (``hard_negative``) plan a whole epoch at its first step
(NGAME's clustering of every row): while no feedback changes that plan, the
workers plan the next ``workers`` epochs while the current one is served, and
select its steps (the in-batch masks) ``depth`` steps ahead.

The worker processes (`batchcraft.batcher.lookahead_worker`) run one BLAS/torch
thread each, so processes, not threads, share the cores; a pool that breaks is
logged once, and selections then run on the request path.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from concurrent.futures import Future, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

import numpy as np

from batchcraft.batcher.config import DEFAULT_DEPTH, DEFAULT_STALENESS, Position
from batchcraft.batcher.feedback import PoolFeedback
from batchcraft.batcher.job import Job
from batchcraft.batcher.lookahead_worker import (
    DatasetSource,
    Result,
    WorkerPool,
    plan_in_worker,
    select_in_worker,
)
from batchcraft.batcher.selections import GlobalSelection
from batchcraft.errors import ConfigError

T = TypeVar("T")


class Lookahead(WorkerPool):
    """Worker processes that make selections ahead of demand, for every job attached.

    Args:
        sources: the served datasets by name.
        workers: worker processes (the machine's cores is the usual choice).
        depth: steps selected ahead of a job's latest request.
        staleness: steps a feedback selector may select ahead of the trainer's reports.
    """

    def __init__(
        self,
        sources: Mapping[str, DatasetSource],
        *,
        workers: int,
        depth: int = DEFAULT_DEPTH,
        staleness: int = DEFAULT_STALENESS,
    ) -> None:
        if depth <= 0:
            raise ConfigError(f"lookahead depth={depth} must be > 0")
        if staleness < 0:
            raise ConfigError(f"feedback staleness={staleness} must be >= 0")
        super().__init__(sources, workers)
        self.depth = depth
        self.staleness = staleness

    def attach(self, job: Job) -> None:
        """Select ``job``'s batches ahead from now on, if its selector allows it."""
        if job.selects_ahead:
            job.ahead = JobLookahead(job, self)

    def submit(
        self, job: Job, position: Position, feedback: PoolFeedback | None
    ) -> Future[Result] | None:
        """Start the selection of ``job`` at ``position`` from ``feedback`` (the pool's
        feedback fields, None for a pure job); None when the pool is unusable."""
        # an epoch plan may come from feedback the worker lacks: send its batch along
        candidates = job.pool_positions(position) if job.selector.epoch_level else None
        return self.run(select_in_worker, job.job_id, job.config, position, feedback,
                        candidates)  # fmt: skip

    def submit_plan(self, job: Job, epoch: int) -> Future[list[np.ndarray]] | None:
        """Start planning ``epoch`` of ``job`` (an epoch-level selector, no feedback yet)."""
        return self.run(plan_in_worker, job.job_id, job.config, epoch)


class JobLookahead:
    """One job's selections (and epoch plans) made ahead of demand: under way or made.

    Args:
        job: the job.
        pool: the worker processes.
    """

    def __init__(self, job: Job, pool: Lookahead) -> None:
        self.job = job
        self.pool = pool
        self.capacity = 4 * pool.depth + 8  # ranks a few steps apart all find theirs
        self.made_ahead = 0  # selections a worker made before they were asked for
        self._made: OrderedDict[Position, Future[Result] | GlobalSelection] = OrderedDict()
        self._blind: set[Position] = set()  # started before the job had feedback
        self._plans: dict[int, Future[list[np.ndarray]]] = {}
        self._lock = threading.Lock()

    def take(self, position: Position) -> GlobalSelection | None:
        """The selection at ``position`` if a worker made it or is making it (then waits
        for it); None if not started, still queued (cancelled: the request path is
        sooner), made before the job's first feedback and feedback exists now, or if
        its worker failed (the request path then makes it, and raises what the worker
        raised)."""
        with self._lock:
            found = self._made.get(position)
            blind = position in self._blind
        if blind and self.job.has_feedback():  # feedback arrived since: select from it
            with self._lock:
                self._forget(position)
            return None
        if isinstance(found, Future):
            result = self._result(found)
            if result is None:
                with self._lock:
                    self._forget(position)
                return None
            found = GlobalSelection(position, *result, made_by="worker")
            with self._lock:
                self.made_ahead += 1
                if position in self._made:
                    self._made[position] = found
        if found is not None and not self.job.pure:
            with self._lock:  # the job caches it from here on
                self._forget(position)
        return found

    def epoch_plan(self, epoch: int) -> list[np.ndarray] | None:
        """The batches of ``epoch`` if a worker planned them (waiting for one under way)
        and the job still has no feedback; None otherwise."""
        with self._lock:
            future = self._plans.pop(epoch, None)
        if future is None or self.job.has_feedback():
            return None
        return self._result(future)

    def pause(self) -> None:
        """Drop the selections and plans no worker has started."""
        with self._lock:
            for position, item in list(self._made.items()):
                if isinstance(item, Future) and item.cancel():
                    self._forget(position)
            for epoch, future in list(self._plans.items()):
                if future.cancel():
                    del self._plans[epoch]

    def keep(self, selection: GlobalSelection) -> None:
        """Keep a selection made on the request path for the job's other ranks."""
        with self._lock:
            self._made[selection.position] = selection
            self._trim()

    @property
    def depth(self) -> int:
        """Steps selected ahead now: the pool's depth, or its feedback staleness once the
        job has feedback (a selection made ahead misses what is reported meanwhile)."""
        if self.job.pure or not self.job.has_feedback():
            return self.pool.depth
        return min(self.pool.depth, self.pool.staleness)

    def after(self, position: Position) -> None:
        """Start the selections of the `depth` steps after ``position`` not yet started
        (and, for an epoch-level selector, the plans of the next epochs)."""
        planning = self.job.selector.epoch_level
        if planning:
            self._plan_ahead(position.epoch)
        following = position
        for _ in range(self.depth):
            following = self.job.next_position(following)
            if planning and not self._planned(following.epoch):
                return  # its pool is in a plan still being made: never wait for it here
            with self._lock:
                if following in self._made:
                    continue
            future = self._start(following)
            if future is None:
                return
            with self._lock:
                self._made[following] = future
                self._trim()

    def pending(self) -> int:
        """Selections started and not yet taken."""
        with self._lock:
            return sum(isinstance(item, Future) for item in self._made.values())

    def settle(self, timeout: float | None = None) -> None:
        """Wait until every selection and plan started so far is made (or failed)."""
        with self._lock:
            started: list[Future[Any]] = list(self._plans.values())
            started += [item for item in self._made.values() if isinstance(item, Future)]
        wait(started, timeout)

    def _start(self, position: Position) -> Future[Result] | None:
        feedback = None
        blind = not self.job.has_feedback()
        if not self.job.pure:
            feedback = self.job.feedback_for(position)
            if feedback is None:
                return None  # no feedback yet: the uniform warm-up draw needs no worker
        future = self.pool.submit(self.job, position, feedback)
        if future is not None and blind and not self.job.pure:
            with self._lock:
                self._blind.add(position)
        return future

    def _plan_ahead(self, epoch: int) -> None:
        """Plan the ``workers`` epochs after ``epoch`` while no feedback can change them."""
        if self.job.has_feedback():
            return
        for following in range(epoch + 1, epoch + 1 + self.pool.workers):
            with self._lock:
                if following in self._plans or following in self.job.plans:
                    continue
                for old in [e for e in self._plans if e < epoch]:
                    self._plans.pop(old).cancel()
            future = self.pool.submit_plan(self.job, following)
            if future is None:
                return
            with self._lock:
                self._plans[following] = future

    def _planned(self, epoch: int) -> bool:
        if epoch in self.job.plans:
            return True
        with self._lock:
            future = self._plans.get(epoch)
        return future is not None and future.done()

    def _result(self, future: Future[T]) -> T | None:
        """A worker's result; None if it was still queued (cancelled now: the request path
        is sooner) or failed."""
        if future.cancel():
            return None
        try:
            return future.result()
        except BrokenProcessPool as error:
            self.pool.mark_broken(error)
        except Exception:
            pass
        return None

    def _forget(self, position: Position) -> None:
        self._made.pop(position, None)
        self._blind.discard(position)

    def _trim(self) -> None:
        while len(self._made) > self.capacity:
            oldest = min(self._made)  # the earliest step, not the first made
            item = self._made.pop(oldest)
            self._blind.discard(oldest)
            if isinstance(item, Future):
                item.cancel()
