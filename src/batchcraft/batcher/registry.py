"""Registered datasets by name, and the jobs being served, with their checkpoints."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

from batchcraft.batcher.checkpoint import restore_job, save_job
from batchcraft.batcher.config import JobConfig
from batchcraft.batcher.dataset import CuratedDataset
from batchcraft.batcher.errors import JobConflictError, UnknownDatasetError
from batchcraft.batcher.job import Job


class DatasetRegistry:
    """Datasets addressed by registered name (clients never send paths)."""

    def __init__(self, datasets: Iterable[CuratedDataset] = ()) -> None:
        self._datasets: dict[str, CuratedDataset] = {}
        for dataset in datasets:
            self.add(dataset)

    def add(self, dataset: CuratedDataset) -> None:
        """Register ``dataset`` under ``dataset.name``."""
        if dataset.name in self._datasets:
            raise JobConflictError(f"dataset name {dataset.name!r} is registered twice")
        self._datasets[dataset.name] = dataset

    def get(self, name: str) -> CuratedDataset:
        """The dataset registered as ``name``.

        Raises:
            UnknownDatasetError: listing the registered names.
        """
        try:
            return self._datasets[name]
        except KeyError:
            raise UnknownDatasetError(
                f"unknown dataset {name!r}; registered: {sorted(self._datasets)}"
            ) from None

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._datasets.values())

    def __len__(self) -> int:
        return len(self._datasets)


class JobRegistry:
    """Jobs by id; restores them from, and saves them to, ``checkpoint_dir``.

    Args:
        datasets: the registered datasets.
        checkpoint_dir: where job state lives; None keeps state in memory only.
        fsync: fsync checkpoint files (off only for tests and benchmarks).
    """

    def __init__(
        self, datasets: DatasetRegistry, checkpoint_dir: Path | None = None, *, fsync: bool = True
    ) -> None:
        self.datasets = datasets
        self.checkpoint_dir = checkpoint_dir
        self.fsync = fsync
        self._jobs: dict[str, Job] = {}
        self._saved_feedback: dict[str, int] = {}
        self._saved_selections: dict[str, int] = {}
        self._lock = threading.Lock()
        # One writer at a time: a slow periodic snapshot must never replace a newer one.
        self._save_lock = threading.Lock()

    def get_or_create(self, job_id: str, config: JobConfig) -> Job:
        """The job ``job_id``, created (and restored from its checkpoint) on first use.

        Raises:
            UnknownDatasetError: ``config.dataset`` is not registered.
            JobConflictError: the job exists with different parameters.
            ConfigError: the selector or its parameters are invalid.
        """
        dataset = self.datasets.get(config.dataset)
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None:
                if job.config != config:
                    raise JobConflictError(
                        f"job {job_id!r} is running with {job.config.canonical_json()}; "
                        f"got {config.canonical_json()}"
                    )
                return job
            job = Job(job_id, config, dataset)
            if self.checkpoint_dir is not None:
                restore_job(job, self.checkpoint_dir)
            self._jobs[job_id] = job
            self._saved_feedback[job_id] = job.feedback.num_updates
            return job

    def save(self, job: Job, *, with_feedback: bool | None = None) -> None:
        """Checkpoint ``job`` (feedback only if it changed, unless forced)."""
        if self.checkpoint_dir is None:
            return
        with self._save_lock:
            updates = job.feedback.num_updates
            self._saved_selections[job.job_id] = job.selections_made
            if with_feedback is None:
                with_feedback = updates != self._saved_feedback.get(job.job_id)
            save_job(job, self.checkpoint_dir, feedback=with_feedback, fsync=self.fsync)
            if with_feedback:
                self._saved_feedback[job.job_id] = updates

    def persist_selections(self, job: Job) -> None:
        """Write ahead: save ``job`` if it made selections since the last save.

        Called before a feedback-dependent selection is sent, so that after a
        crash every rank still receives its part of the same selection.
        """
        if self.checkpoint_dir is None or job.pure:
            return
        if job.selections_made != self._saved_selections.get(job.job_id):
            self.save(job, with_feedback=False)

    def save_all(self) -> None:
        """Checkpoint every job."""
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            self.save(job)

    def run_periodic_saves(self, interval: float, stop: threading.Event) -> None:
        """Save every job every ``interval`` seconds until ``stop`` is set (thread target)."""
        while not stop.wait(interval):
            self.save_all()
