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
on curated embeddings) selects the full depth ahead. Uniform draws, synchronous
scoring rounds and epoch-level plans (``hard_negative``) are not selected ahead.

Workers are started with ``spawn`` (a server has gRPC threads, which ``fork``
would copy mid-flight) and open each dataset themselves, the first time they
select from it: with a ``cache_dir`` they memory-map the server's Arrow file, so
the rows live once in the page cache; without one each worker holds its own copy
of the rows of the datasets it selects from. Each worker runs one torch/BLAS
thread, so processes, not threads, share the cores.

A pool that breaks (a worker killed, out of memory) is logged once and no
longer used; selections then run on the request path.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from batchcraft.batcher.config import DEFAULT_DEPTH, DEFAULT_STALENESS, JobConfig, Position
from batchcraft.batcher.feedback import PoolFeedback
from batchcraft.batcher.job import Job
from batchcraft.batcher.selections import GlobalSelection
from batchcraft.batcher.served_dataset import CuratedDataset
from batchcraft.errors import ConfigError
from batchcraft.logs import log_event

LOG = logging.getLogger("batchcraft.batcher")
_JOBS_PER_WORKER = 16  # jobs a worker keeps built (selector, pools); least recently used out
_ORPHAN_CHECK_SECONDS = 0.5
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

Result = tuple[np.ndarray, "np.ndarray | None", dict[str, Any]]


@dataclass(frozen=True)
class DatasetSource:
    """Where a worker opens a served dataset (as the server opened it)."""

    name: str
    root: Path
    cache_dir: Path | None = None

    @classmethod
    def of(cls, dataset: CuratedDataset, cache_dir: Path | None = None) -> DatasetSource:
        return cls(dataset.name, dataset.root, cache_dir)


class Lookahead:
    """A pool of worker processes that make selections of pure jobs ahead of demand.

    Args:
        sources: the served datasets by name.
        workers: worker processes (the machine's cores is the usual choice).
        depth: steps selected ahead of a job's latest request.
    """

    def __init__(
        self,
        sources: Mapping[str, DatasetSource],
        *,
        workers: int,
        depth: int = DEFAULT_DEPTH,
        staleness: int = DEFAULT_STALENESS,
    ) -> None:
        if workers <= 0:
            raise ConfigError(f"selection workers={workers} must be > 0")
        if depth <= 0:
            raise ConfigError(f"lookahead depth={depth} must be > 0")
        if staleness < 0:
            raise ConfigError(f"feedback staleness={staleness} must be >= 0")
        self.depth = depth
        self.staleness = staleness
        self.workers = workers
        self._executor = ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(dict(sources), os.getpid()),
        )
        self._broken = False
        self._lock = threading.Lock()

    @property
    def broken(self) -> bool:
        """Whether the pool failed and selections run on the request path."""
        return self._broken

    def attach(self, job: Job) -> None:
        """Select ``job``'s batches ahead from now on, if its selector allows it."""
        if job.selects_ahead:
            job.ahead = JobLookahead(job, self)

    def submit(
        self, job: Job, position: Position, feedback: PoolFeedback | None
    ) -> Future[Result] | None:
        """Start the selection of ``job`` at ``position`` from ``feedback`` (the pool's
        feedback fields, None for a pure job); None when the pool is unusable."""
        if self._broken:
            return None
        try:
            return self._executor.submit(
                _select_in_worker, job.job_id, job.config, position.epoch, position.step, feedback
            )
        except (BrokenProcessPool, RuntimeError) as error:  # RuntimeError: shut down
            self.mark_broken(error)
            return None

    def mark_broken(self, error: BaseException) -> None:
        """Stop using the pool (logged once)."""
        with self._lock:
            if self._broken:
                return
            self._broken = True
        log_event(
            LOG, logging.WARNING, "lookahead_broken", error=f"{type(error).__name__}: {error}"
        )

    def close(self) -> None:
        """Stop the workers; selections still waiting are cancelled."""
        self._broken = True
        self._executor.shutdown(wait=True, cancel_futures=True)


class JobLookahead:
    """One job's selections made ahead of demand: under way or made, by position.

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
        self._lock = threading.Lock()

    def take(self, position: Position) -> GlobalSelection | None:
        """The selection at ``position`` if a worker made it or is making it (then waits
        for it); None if not started, still queued (cancelled: the request path is
        sooner), or if its worker failed (the request path then makes it, and raises
        what the worker raised)."""
        with self._lock:
            found = self._made.get(position)
        if isinstance(found, Future) and found.cancel():  # still queued: no worker has it
            with self._lock:
                self._made.pop(position, None)
            return None
        if isinstance(found, Future):  # a worker has it: it is ahead of the request path
            try:
                positions, weights, info = found.result()
            except BrokenProcessPool as error:
                self.pool.mark_broken(error)
                return None
            except Exception:
                return None
            found = GlobalSelection(position, positions, weights, info, made_by="worker")
            with self._lock:
                self.made_ahead += 1
                if position in self._made:
                    self._made[position] = found
        if found is not None and not self.job.pure:
            with self._lock:  # the job caches it from here on
                self._made.pop(position, None)
        return found

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
        """Start the selections of the `depth` steps after ``position`` not yet started."""
        following = position
        for _ in range(self.depth):
            following = self.job.next_position(following)
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
        """Wait until every selection started so far is made (or failed)."""
        with self._lock:
            started = [item for item in self._made.values() if isinstance(item, Future)]
        wait(started, timeout)

    def _start(self, position: Position) -> Future[Result] | None:
        feedback = None
        if not self.job.pure:
            feedback = self.job.feedback_for(position)
            if feedback is None:
                return None  # no feedback yet: the uniform warm-up draw needs no worker
        return self.pool.submit(self.job, position, feedback)

    def _trim(self) -> None:
        while len(self._made) > self.capacity:
            oldest = self._made.pop(min(self._made))  # the earliest step, not the first made
            if isinstance(oldest, Future):
                oldest.cancel()


# ---------------------------------------------------------------------- in the worker

_SOURCES: dict[str, DatasetSource] = {}
_DATASETS: dict[str, CuratedDataset] = {}
_JOBS: OrderedDict[tuple[str, str], Job] = OrderedDict()


def _start_worker(sources: dict[str, DatasetSource], server: int) -> None:
    for variable in _THREAD_VARIABLES:  # before numpy's BLAS or torch start their threads
        os.environ[variable] = "1"
    _SOURCES.update(sources)
    threading.Thread(target=_exit_with, args=(server,), name="orphan-watch", daemon=True).start()


def _exit_with(server: int) -> None:
    """End this worker once the server process is gone: a SIGKILLed server cannot shut its
    pool down, and the workers would go on selecting for nobody."""
    while os.getppid() == server:
        time.sleep(_ORPHAN_CHECK_SECONDS)
    os._exit(0)


def _select_in_worker(
    job_id: str, config: JobConfig, epoch: int, step: int, feedback: PoolFeedback | None
) -> Result:
    selection = _job(job_id, config).compute_selection(Position(epoch, step), feedback)
    return selection.positions, selection.weights, selection.info


def _job(job_id: str, config: JobConfig) -> Job:
    key = (job_id, repr(config))
    job = _JOBS.pop(key, None)
    if job is None:
        dataset = _DATASETS.get(config.dataset)
        if dataset is None:
            source = _SOURCES[config.dataset]
            dataset = CuratedDataset.open(source.root, source.name, cache_dir=source.cache_dir)
            _DATASETS[config.dataset] = dataset
        job = Job(job_id, config, dataset)
    _JOBS[key] = job
    while len(_JOBS) > _JOBS_PER_WORKER:
        _JOBS.popitem(last=False)
    return job
