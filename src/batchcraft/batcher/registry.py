"""Registered datasets by name, and the jobs being served, with their checkpoints."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from batchcraft.batcher.ahead import AheadOfDemand
from batchcraft.batcher.checkpoint import read_checkpoint, recovery_hint, restore_job, save_job
from batchcraft.batcher.checkpoint_files import log_checkpoint_failure
from batchcraft.batcher.checkpoint_store import STORE_ERRORS, CheckpointStore
from batchcraft.batcher.config import JobConfig
from batchcraft.batcher.datasets import DatasetRegistry
from batchcraft.batcher.errors import CheckpointSaveError
from batchcraft.batcher.job import Job
from batchcraft.batcher.job_conflicts import check_same_config
from batchcraft.batcher.job_lifetimes import (
    JobLifetimes,
    JobUses,
    mark_finished,
    remove_expired,
    unmark_finished,
)
from batchcraft.logs import log_event

__all__ = ["JobRegistry"]

LOG = logging.getLogger("batchcraft.batcher")


class JobRegistry:
    """Jobs by id; restores them from, and saves them to, ``checkpoint_dir``; drops idle
    and expired ones from memory (`retire`, `batchcraft.batcher.job_lifetimes`).

    Args:
        datasets: the registered datasets.
        checkpoint_dir: where job state lives, a path, a store's URL or a
            `CheckpointStore`; None keeps state in memory only (and idle jobs with
            it: they have nowhere to go).
        fsync: fsync local checkpoint files (off only for tests and benchmarks).
        prepare: attaches look-ahead workers and epoch plans to every job it creates.
        lifetimes: how long idle and finished jobs stay.
        clock: wall-clock seconds of those lifetimes.
    """

    def __init__(
        self,
        datasets: DatasetRegistry,
        checkpoint_dir: Path | str | CheckpointStore | None = None,
        *,
        fsync: bool = True,
        prepare: AheadOfDemand | None = None,
        lifetimes: JobLifetimes | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.datasets = datasets
        self.prepare = prepare
        if checkpoint_dir is None or isinstance(checkpoint_dir, CheckpointStore):
            self.store = checkpoint_dir
        else:
            self.store = CheckpointStore.at(checkpoint_dir, fsync=fsync)
        self.checkpoint_dir = checkpoint_dir  # as given
        self.lifetimes = lifetimes or JobLifetimes()
        self._uses = JobUses(clock)
        self._last_sweep = float("-inf")
        self._jobs: dict[str, Job] = {}
        self._saved_feedback: dict[str, int] = {}
        self._saved_selections: dict[str, int] = {}
        self._saved_states: dict[str, tuple[int, int]] = {}  # Job.revision in state.json
        self._failing: set[str] = set()  # job ids whose last periodic save failed
        self._lock = threading.RLock()
        # One writer at a time: a slow periodic snapshot must never replace a newer one.
        self._save_lock = threading.Lock()

    def prepare_directory(self) -> None:
        """At server start: refuse a checkpoint directory that cannot be written, and remove
        the stale temporaries of writers killed mid-save (`checkpoint_files`).

        Raises:
            OutputError: naming the directory.
            StorageError: the checkpoint store cannot be reached or written.
        """
        if self.store is not None:
            self.store.prepare()

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
            if self.store is not None:
                # this server takes the job on: any temporary in its directory is a leftover
                self.store.job(job_id).remove_temporaries()
                saved = read_checkpoint(self.store, job_id)
            if saved is not None:
                check_same_config(
                    job_id,
                    saved.config,
                    config,
                    f"was checkpointed in {saved.path}",
                    hint=f"resume it with those; {recovery_hint(saved.directory, job_id)}",
                )
            job = Job(job_id, config, dataset)
            if self.prepare is not None:
                self.prepare(job)
            if saved is not None:
                assert self.store is not None
                restore_job(job, saved, self.store)
                self._saved_states[job_id] = job.revision  # the files hold it already
            self._jobs[job_id] = job
            self._saved_feedback[job_id] = job.feedback.num_updates
            self._uses.loaded(job_id)
            return job

    def check_owner(self, job: Job) -> None:
        """Raise `JobMovedError` if another replica owns ``job`` now (`LeasedJobRegistry`)."""

    def __contains__(self, job_id: object) -> bool:
        """Whether job ``job_id`` is in memory."""
        return job_id in self._jobs

    def __len__(self) -> int:
        """Jobs in memory."""
        return len(self._jobs)

    def open_session(self, job_id: str, config: JobConfig, rank: int) -> Job:
        """`get_or_create`, held by a session of ``rank`` until `close_session`: a job in
        use is never dropped. A finished job opened again runs again.

        Raises:
            as `get_or_create`.
        """
        with self._lock:
            job = self.get_or_create(job_id, config)
            if self._uses.opened(job, rank) and self.store is not None:
                unmark_finished(self.store.job(job_id))
            return job

    def close_session(self, job: Job, rank: int, *, finished: bool) -> None:
        """A session of `open_session` ended; ``finished``: its stream served all its
        epochs. The job is idle from now while no other session holds it."""
        with self._lock:
            done = self._uses.closed(job, rank, finished=finished)
        if done and self.store is not None:
            try:  # the marker's time starts the retention; the state saved first
                self.save(job)
                mark_finished(self.store.job(job.job_id))
            except STORE_ERRORS as error:  # the next periodic save writes the state
                log_checkpoint_failure(job.job_id, self._directory(job), error)

    def retire(self) -> None:
        """Drop finished jobs past their retention (with their checkpoint), and save and drop
        jobs idle for ``lifetimes.idle_seconds``; at each checkpoint interval."""
        with self._lock:
            for job_id, job in list(self._jobs.items()):
                if self._uses.expired(job_id, self.lifetimes):
                    self._drop(job_id, "job_expired")
                    if self.store is not None:
                        self.store.job(job_id).remove()
                elif self.store is not None and self._uses.idle(job_id, self.lifetimes):
                    try:
                        self.save(job)
                    except Exception as error:  # stays in memory; retried next interval
                        log_checkpoint_failure(job.job_id, self._directory(job), error)
                        continue
                    self._drop(job_id, "job_evicted")
            self._sweep_expired()

    def _drop(self, job_id: str, event: str) -> None:
        del self._jobs[job_id]
        self._uses.forget(job_id)
        for saved in (self._saved_feedback, self._saved_selections, self._saved_states):
            saved.pop(job_id, None)
        if self.store is not None:  # a reload reads the name from the job's state.json
            self.store.feedback_names.pop(job_id, None)
        log_event(LOG, logging.INFO, event, job=job_id, resident=len(self._jobs))

    def _sweep_expired(self) -> None:
        """Remove expired checkpoints of jobs not in memory, at most once a minute."""
        retention = self.lifetimes.finished_retention
        now = self._uses.clock()
        if self.store is None or retention <= 0 or now - self._last_sweep < 60.0:
            return
        self._last_sweep = now
        resident = {self.store.job(job_id).name for job_id in self._jobs}
        remove_expired(self.store, now - retention, resident)

    def save(self, job: Job, *, with_feedback: bool | None = None) -> None:
        """Checkpoint ``job`` if it changed since its last checkpoint: its state
        (`Job.revision`) or its feedback table, which is written only if it changed, unless
        ``with_feedback`` says. A server with many jobs, most of them idle, rewrites only
        the busy ones each interval.

        Raises:
            OSError, StorageError: a file could not be written. The caller decides: the
                periodic saver logs it and retries, `save_all` reports every
                failed job, a write-ahead save (`persist_selections`) must fail.
        """
        if self.store is None:
            return
        with self._save_lock:
            revision, updates = job.revision, job.feedback.num_updates
            feedback_due = updates != self._saved_feedback.get(job.job_id)
            if revision == self._saved_states.get(job.job_id) and not feedback_due:
                return  # the files hold the job as it is
            if with_feedback is None:
                with_feedback = feedback_due
            saved = save_job(job, self.store, feedback=with_feedback)
            if saved is not None:  # the clients may forget the reports it holds
                job.feedback.mark_saved(saved)
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
        if self.store is None or job.pure:
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
        """Save every job that changed, then `retire` jobs, every ``interval`` seconds until
        ``stop`` is set (thread target). A failed save is logged and tried again."""
        while not stop.wait(interval):
            self._save_each()
            try:
                self.retire()
            except Exception:  # a bug: logged, and the saver must go on
                LOG.exception("retiring jobs failed")

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
                log_checkpoint_failure(job.job_id, self._directory(job), error)
            else:
                if job.job_id in self._failing:
                    self._failing.discard(job.job_id)
                    path = str(self._directory(job))
                    log_event(LOG, logging.INFO, "checkpoint_recovered", job=job.job_id, path=path)
        return failures

    def _directory(self, job: Job) -> str:
        assert self.store is not None  # only jobs of a registry that saves
        return self.store.job(job.job_id).url
