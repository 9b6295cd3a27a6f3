"""The worker processes of `batchcraft.batcher.lookahead`.

Workers are started with ``spawn`` (a server has gRPC threads, which ``fork``
would copy mid-flight) and open each dataset themselves, the first time they
select from it: with a ``cache_dir`` they memory-map the server's Arrow file, so
the rows live once in the page cache; without one each worker holds its own copy
of the rows of the datasets it selects from. Each worker runs one torch/BLAS
thread, so processes, not threads, share the cores, and runs the job's own
selection code (`batchcraft.batcher.job.Job`), so its selections are the server's.
A worker whose server is gone (SIGKILLed: it cannot shut its pool down) exits.

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
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from batchcraft.batcher.config import JobConfig, Position
from batchcraft.batcher.feedback import PoolFeedback
from batchcraft.batcher.job import Job
from batchcraft.batcher.served_dataset import CuratedDataset
from batchcraft.errors import ConfigError
from batchcraft.logs import log_event
from batchcraft.selectors.hardware import warm_up

LOG = logging.getLogger("batchcraft.batcher")
T = TypeVar("T")

_JOBS_PER_WORKER = 16  # jobs a worker keeps built (selector, pools); least recently used out
_ORPHAN_CHECK_SECONDS = 0.5
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

Result = tuple[np.ndarray, "np.ndarray | None", dict[str, Any]]


class WorkerPool:
    """Spawned worker processes that run the job's selection code.

    Args:
        sources: the served datasets by name.
        workers: worker processes.
    """

    def __init__(self, sources: Mapping[str, DatasetSource], workers: int) -> None:
        if workers <= 0:
            raise ConfigError(f"selection workers={workers} must be > 0")
        self.workers = workers
        self._executor = ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=start_worker,
            initargs=(dict(sources), os.getpid()),
        )
        self._broken = False
        self._lock = threading.Lock()
        for _ in range(workers):  # start them now, not on a job's first selection
            self._executor.submit(warm_up)

    @property
    def broken(self) -> bool:
        """Whether the pool failed and selections run on the request path."""
        return self._broken

    def run(self, function: Callable[..., T], *args: Any) -> Future[T] | None:
        """``function(*args)`` in a worker; None when the pool is unusable."""
        if self._broken:
            return None
        try:
            return self._executor.submit(function, *args)
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


@dataclass(frozen=True)
class DatasetSource:
    """Where a worker opens a served dataset (as the server opened it)."""

    name: str
    roots: tuple[Path, ...]
    cache_dir: Path | None = None

    @classmethod
    def of(cls, dataset: CuratedDataset, cache_dir: Path | None = None) -> DatasetSource:
        return cls(dataset.name, dataset.roots, cache_dir)


_SOURCES: dict[str, DatasetSource] = {}
_DATASETS: dict[str, CuratedDataset] = {}
_JOBS: OrderedDict[tuple[str, str], Job] = OrderedDict()


def start_worker(sources: dict[str, DatasetSource], server: int) -> None:
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


def select_in_worker(
    job_id: str,
    config: JobConfig,
    position: Position,
    feedback: PoolFeedback | None,
    candidates: np.ndarray | None,
) -> Result:
    """The selection of ``config``'s job at ``position`` (see `Job.compute_selection`)."""
    selection = _job(job_id, config).compute_selection(position, feedback, candidates)
    return selection.positions, selection.weights, selection.info


def plan_in_worker(job_id: str, config: JobConfig, epoch: int) -> list[np.ndarray]:
    """An epoch-level selector's batches of ``epoch``, before any feedback."""
    return _job(job_id, config).build_epoch_plan(epoch)


def _job(job_id: str, config: JobConfig) -> Job:
    key = (job_id, repr(config))
    job = _JOBS.pop(key, None)
    if job is None:
        dataset = _DATASETS.get(config.dataset)
        if dataset is None:
            source = _SOURCES[config.dataset]
            dataset = CuratedDataset.open(source.roots, source.name, cache_dir=source.cache_dir)
            _DATASETS[config.dataset] = dataset
        job = Job(job_id, config, dataset)
    _JOBS[key] = job
    while len(_JOBS) > _JOBS_PER_WORKER:
        _JOBS.popitem(last=False)
    return job
