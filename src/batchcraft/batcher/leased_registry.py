"""`LeasedJobRegistry`: a job registry that serves and saves only the jobs it holds leases on.

Replicas sharing a checkpoint directory each run one (`batchcraft.batcher.leases`):

- a session's job is taken on only with its lease; a job another live replica
  holds raises `JobMovedError` naming that replica, which the service turns into
  a redirect (`batchcraft.service.server.status`);
- the lease is taken *before* the job's checkpoint is read, so a replica taking
  a job over reads what the previous holder saved last (it can write no more:
  its own view of its lease ends `JobLeases.interval` before the others');
- a job leaves memory with its lease (idle, expired, shutdown), and a job whose
  lease was lost (the holder stalled past the expiry) leaves without being
  saved: the new holder's state is the job's from then on;
- the write-ahead save of a feedback-dependent selection (`persist_selections`)
  raises `JobMovedError` instead of sending a selection it could not save as
  the holder: the ranks would otherwise receive parts of two selections.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from batchcraft.batcher.config import JobConfig
from batchcraft.batcher.errors import JobMovedError
from batchcraft.batcher.job import Job
from batchcraft.batcher.leases import JobLeases, latest_lease
from batchcraft.batcher.registry import JobRegistry
from batchcraft.logs import log_event

LOG = logging.getLogger("batchcraft.batcher")


class LeasedJobRegistry(JobRegistry):
    """A `JobRegistry` that owns a job only while it holds its lease.

    Args:
        *args, **kwargs: as `JobRegistry` (a checkpoint directory is required).
        leases: this replica's leases, on the same checkpoint directory.
    """

    def __init__(self, *args: Any, leases: JobLeases, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        assert self.store is not None, "leases live in the checkpoint directory"
        self.leases = leases

    def get_or_create(self, job_id: str, config: JobConfig) -> Job:
        """As `JobRegistry.get_or_create`, taking the job's lease first.

        Raises:
            JobMovedError: another replica holds the job's lease.
            as `JobRegistry.get_or_create`; OSError if the lease cannot be written.
        """
        with self._lock:
            if job_id in self and not self.leases.holds(job_id):
                self._drop(job_id, "job_lease_lost")  # another replica may have served it since
            if job_id not in self:
                self.leases.acquire(job_id)
            try:
                return super().get_or_create(job_id, config)
            except BaseException:
                if job_id not in self:  # refused (a conflict, a corrupt checkpoint)
                    self.leases.release(job_id, remove=True)
                raise

    def check_owner(self, job: Job) -> None:
        """Raise `JobMovedError` unless this replica still holds ``job``'s lease."""
        if self.leases.holds(job.job_id) and job.job_id in self:
            return
        assert self.store is not None
        latest = latest_lease(self.store.job(job.job_id))
        address = "" if latest is None or latest.holder == self.leases.holder else latest.address
        left = 0.0 if latest is None else max(0.0, latest.expires - self.leases.clock())
        raise JobMovedError(job.job_id, address, left)

    def save(self, job: Job, *, with_feedback: bool | None = None) -> None:
        """As `JobRegistry.save`, but only while the job's lease is held: a replica that lost
        it must not overwrite what the new holder saves."""
        if not self.leases.holds(job.job_id):
            log_event(LOG, logging.WARNING, "save_skipped_lease_lost", job=job.job_id)
            return
        super().save(job, with_feedback=with_feedback)

    def persist_selections(self, job: Job) -> None:
        """As `JobRegistry.persist_selections`, as the job's lease holder.

        Raises:
            JobMovedError: the lease is lost; the selection must not be sent.
        """
        self.check_owner(job)
        super().persist_selections(job)

    def drop_lost(self, job_ids: Iterable[str]) -> None:
        """Drop the jobs whose leases were lost, unsaved (`JobLeases.run`'s callback)."""
        with self._lock:
            for job_id in job_ids:
                if job_id in self:
                    self._drop(job_id, "job_lease_lost")

    def release_all(self) -> None:
        """Give up every lease (at shutdown, after `save_all`)."""
        for job_id in self.leases.held():
            self.leases.release(job_id)

    def _drop(self, job_id: str, event: str) -> None:
        super()._drop(job_id, event)
        self.leases.release(job_id)
