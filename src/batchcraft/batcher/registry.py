"""Registered datasets by name, and the jobs being served, with their checkpoints."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import fields
from pathlib import Path

from batchcraft.batcher.checkpoint import (
    job_directory,
    read_checkpoint,
    recovery_hint,
    restore_job,
    save_job,
)
from batchcraft.batcher.checkpoint_files import (
    check_writable,
    remove_stale_temporaries,
    remove_temporaries,
)
from batchcraft.batcher.config import JobConfig
from batchcraft.batcher.errors import CheckpointSaveError, JobConflictError, UnknownDatasetError
from batchcraft.batcher.job import Job
from batchcraft.batcher.served_dataset import CuratedDataset
from batchcraft.errors import truncated_repr
from batchcraft.logs import log_event

LOG = logging.getLogger("batchcraft.batcher")
CONFIG_ECHO_LIMIT = 256
"""Characters of a job's configuration a conflict message shows."""


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
                f"unknown dataset {truncated_repr(name)}; registered: {sorted(self._datasets)}"
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
        self._saved_states: dict[str, tuple[int, int]] = {}  # Job.revision in state.json
        self._failing: set[str] = set()  # job ids whose last periodic save failed
        self._lock = threading.Lock()
        # One writer at a time: a slow periodic snapshot must never replace a newer one.
        self._save_lock = threading.Lock()

    def prepare_directory(self) -> None:
        """At server start: refuse a checkpoint directory that cannot be written, and remove
        the stale temporaries of writers killed mid-save (`checkpoint_files`).

        Raises:
            OutputError: naming the directory.
        """
        if self.checkpoint_dir is None:
            return
        check_writable(self.checkpoint_dir, "checkpoint directory")
        removed = remove_stale_temporaries(self.checkpoint_dir)
        if removed:
            log_event(
                LOG,
                logging.INFO,
                "checkpoint_leftovers_removed",
                directory=str(self.checkpoint_dir),
                files=len(removed),
            )

    def get_or_create(self, job_id: str, config: JobConfig) -> Job:
        """The job ``job_id``, created (and restored from its checkpoint) on first use.

        A job id keeps its config: asking for it with another one is refused
        alike whether the job is running or only checkpointed.

        Raises:
            UnknownDatasetError: ``config.dataset`` is not registered.
            JobConflictError: the job runs, or was checkpointed, with different parameters.
            CheckpointError: the job's checkpoint is corrupt or of another dataset version.
            ConfigError: the selector or its parameters are invalid.
        """
        dataset = self.datasets.get(config.dataset)
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None:
                hint = "use another job id for other parameters"
                check_same_config(job_id, job.config, config, "is running", hint=hint)
                return job
            saved = None
            if self.checkpoint_dir is not None:
                # this server takes the job on: any temporary in its directory is a leftover
                remove_temporaries(job_directory(self.checkpoint_dir, job_id))
                saved = read_checkpoint(self.checkpoint_dir, job_id)
            if saved is not None:
                check_same_config(
                    job_id,
                    saved.config,
                    config,
                    f"was checkpointed in {saved.path}",
                    hint=f"resume it with those; {recovery_hint(saved.directory, job_id)}",
                )
            job = Job(job_id, config, dataset)
            if saved is not None:
                restore_job(job, saved)
                self._saved_states[job_id] = job.revision  # the files hold it already
            self._jobs[job_id] = job
            self._saved_feedback[job_id] = job.feedback.num_updates
            return job

    def save(self, job: Job, *, with_feedback: bool | None = None) -> None:
        """Checkpoint ``job`` if it changed since its last checkpoint: its state
        (`Job.revision`) or its feedback table, which is written only if it changed, unless
        ``with_feedback`` says. A server with many jobs, most of them idle, rewrites only
        the busy ones each interval.

        Raises:
            OSError: a file could not be written. The caller decides: the
                periodic saver logs it and retries, `save_all` reports every
                failed job, a write-ahead save (`persist_selections`) must fail.
        """
        if self.checkpoint_dir is None:
            return
        with self._save_lock:
            revision, updates = job.revision, job.feedback.num_updates
            feedback_due = updates != self._saved_feedback.get(job.job_id)
            if revision == self._saved_states.get(job.job_id) and not feedback_due:
                return  # the files hold the job as it is
            if with_feedback is None:
                with_feedback = feedback_due
            save_job(job, self.checkpoint_dir, feedback=with_feedback, fsync=self.fsync)
            # Only once written: a failed save must leave the next one still due.
            self._saved_selections[job.job_id] = revision[1]
            self._saved_states[job.job_id] = revision
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
        """Checkpoint every job (at shutdown); one job failing does not stop the others.

        Raises:
            CheckpointSaveError: naming every job that could not be saved (each
                is also logged): their state since their last checkpoint is lost
                when the process exits.
        """
        failures = self._save_each()
        if failures:
            listed = "; ".join(
                f"job {job.job_id!r} in {self._directory(job)}: {type(error).__name__}: {error}"
                for job, error in failures
            )
            raise CheckpointSaveError(
                f"could not checkpoint {len(failures)} job(s): {listed}"
            ) from failures[0][1]

    def run_periodic_saves(self, interval: float, stop: threading.Event) -> None:
        """Save every job every ``interval`` seconds until ``stop`` is set (thread target).

        A job whose save fails is logged and tried again at the next interval;
        the other jobs are saved as usual.
        """
        while not stop.wait(interval):
            self._save_each()

    def _save_each(self) -> list[tuple[Job, Exception]]:
        """Save every job; log and return the ones that failed."""
        with self._lock:
            jobs = list(self._jobs.values())
        failures = []
        for job in jobs:
            try:
                self.save(job)
            # Any error: it must not end the loop, or no job would be checkpointed again.
            except Exception as error:
                failures.append((job, error))
                self._failing.add(job.job_id)
                self._log_failure(job, error)
            else:
                if job.job_id in self._failing:
                    self._failing.discard(job.job_id)
                    path = str(self._directory(job))
                    log_event(LOG, logging.INFO, "checkpoint_recovered", job=job.job_id, path=path)
        return failures

    def _log_failure(self, job: Job, error: Exception) -> None:
        # A disk problem explains itself; anything else is a bug worth its traceback.
        log_event(
            LOG,
            logging.WARNING,
            "checkpoint_failed",
            exc_info=not isinstance(error, OSError),
            job=job.job_id,
            path=str(self._directory(job)),
            error=f"{type(error).__name__}: {error}",
        )

    def _directory(self, job: Job) -> Path:
        assert self.checkpoint_dir is not None  # only jobs of a registry that saves
        return job_directory(self.checkpoint_dir, job.job_id)


def check_same_config(
    job_id: str, existing: JobConfig, requested: JobConfig, where: str, *, hint: str = ""
) -> None:
    """Refuse ``requested`` unless it equals the config job ``job_id`` already has.

    Args:
        where: how the job has ``existing``, e.g. ``"is running"``.
        hint: what the user can do instead (appended to the message).

    Raises:
        JobConflictError: naming both configs and the fields that differ.
    """
    if requested == existing:
        return
    changed = ", ".join(
        f"{name} {truncated_repr(getattr(existing, name))} -> "
        f"{truncated_repr(getattr(requested, name))}"
        for name in (field.name for field in fields(JobConfig))
        if getattr(existing, name) != getattr(requested, name)
    )
    raise JobConflictError(
        f"job {truncated_repr(job_id)} {where} with {_shown(existing)}; got "
        f"{_shown(requested)} ({changed})" + (f"; {hint}" if hint else "")
    )


def _shown(config: JobConfig) -> str:
    """A config's canonical JSON as a message shows it: its parameters are the client's,
    so it is cut short like any echoed value (the fields that differ are listed apart)."""
    text = config.canonical_json()
    return text if len(text) <= CONFIG_ECHO_LIMIT else text[:CONFIG_ECHO_LIMIT] + "…"
