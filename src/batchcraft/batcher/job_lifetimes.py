"""How long a server keeps jobs: idle ones are saved and dropped, finished ones expire.

A server kept every job it ever served in memory (its feedback table is a few
arrays of the dataset's length), so its RSS grew with every job. `JobLifetimes`
holds the two limits the registry applies at each checkpoint interval:

- a job no session has used for ``idle_seconds`` is saved and dropped from
  memory; the next session of the job reloads it from its checkpoint, exactly
  as a restarted server would (so only with a checkpoint directory);
- a *finished* job (every rank's stream served all the epochs it asked for) is
  kept ``finished_retention`` seconds after it finished, for late resumes and
  inspection, then dropped: from memory and with its checkpoint directory.

`JobUses` is the registry's bookkeeping of which jobs sessions hold, since
when each is idle and when each finished. A finished job leaves a marker file
``finished`` in its checkpoint directory, whose modification time says when,
so that a restarted server still expires it (`expired_directories`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass

from batchcraft.batcher.checkpoint_store import CheckpointStore, JobFiles
from batchcraft.batcher.job import Job
from batchcraft.errors import ConfigError
from batchcraft.logs import log_event

LOG = logging.getLogger("batchcraft.batcher")
MARKER = "finished"
"""File in a job's checkpoint directory: the job finished at its modification time."""


@dataclass(frozen=True)
class JobLifetimes:
    """How long jobs stay; 0 keeps them forever.

    Attributes:
        idle_seconds: save and drop a job no session used for this long.
        finished_retention: drop a finished job (and its checkpoint) this long after.
    """

    idle_seconds: float = 600.0
    finished_retention: float = 7 * 86400.0

    def __post_init__(self) -> None:
        for name in ("idle_seconds", "finished_retention"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"{name}={getattr(self, name)} must be >= 0 (0 = never)")


class JobUses:
    """Open sessions per job in memory, since when each is idle, when each finished.

    Not thread-safe: the registry calls it under its lock.

    Args:
        clock: wall-clock seconds (``time.time``; tests pass their own).
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._sessions: dict[str, int] = {}
        self._idle_since: dict[str, float] = {}
        self._finished_at: dict[str, float] = {}

    def loaded(self, job_id: str) -> None:
        """The job was created or reloaded: idle from now until a session opens."""
        self._idle_since[job_id] = self.clock()

    def opened(self, job: Job, rank: int) -> bool:
        """A session of ``job``'s ``rank`` opened; whether the job was finished (it is not
        any more: its marker must go)."""
        self._sessions[job.job_id] = self._sessions.get(job.job_id, 0) + 1
        self._finished_at.pop(job.job_id, None)
        return set_finished(job, rank, False)

    def closed(self, job: Job, rank: int, *, finished: bool) -> bool:
        """A session of ``job``'s ``rank`` ended (``finished``: its stream served all its
        epochs); whether that finished the whole job."""
        left = self._sessions.get(job.job_id, 1) - 1
        if left > 0:
            self._sessions[job.job_id] = left
        else:
            self._sessions.pop(job.job_id, None)
        now = self.clock()
        self._idle_since[job.job_id] = now
        if finished and set_finished(job, rank, True):
            self._finished_at[job.job_id] = now
            return True
        return False

    def expired(self, job_id: str, lifetimes: JobLifetimes) -> bool:
        """Whether ``job_id`` finished more than the retention ago and no session holds it."""
        return self._past(job_id, self._finished_at.get(job_id), lifetimes.finished_retention)

    def idle(self, job_id: str, lifetimes: JobLifetimes) -> bool:
        """Whether no session held ``job_id`` for ``lifetimes.idle_seconds``."""
        return self._past(job_id, self._idle_since.get(job_id), lifetimes.idle_seconds)

    def _past(self, job_id: str, since: float | None, limit: float) -> bool:
        """Whether ``limit`` seconds (0: never) passed ``since`` and no session holds the job."""
        if limit <= 0 or since is None or self._sessions.get(job_id):
            return False
        return self.clock() - since >= limit

    def forget(self, job_id: str) -> None:
        """The job left memory."""
        self._sessions.pop(job_id, None)
        self._idle_since.pop(job_id, None)
        self._finished_at.pop(job_id, None)


def set_finished(job: Job, rank: int, finished: bool) -> bool:
    """Record whether ``rank``'s stream of ``job`` served all its epochs; for ``finished``,
    whether that made every rank finished, else whether every rank was finished before."""
    with job._lock:
        ranks = job.finished_ranks
        before = len(ranks) == job.config.world_size
        if finished != (rank in ranks):
            if finished:
                ranks.add(rank)
            else:
                ranks.discard(rank)
            job.cursor_moves += 1  # state.json holds the finished ranks: a new revision
        after = len(ranks) == job.config.world_size
        return after and not before if finished else before


def mark_finished(files: JobFiles) -> None:
    """Leave the marker of a finished job in its checkpoint directory."""
    files.write(MARKER, b"")


def unmark_finished(files: JobFiles) -> None:
    """Remove the marker: the job runs again."""
    files.delete(MARKER)


def remove_expired(store: CheckpointStore, before: float, keep: Collection[str]) -> None:
    """Delete the job directories in ``store`` whose marker is older than ``before``
    (wall-clock seconds), except those named in ``keep`` (jobs in memory decide for
    themselves)."""
    for files in expired_directories(store, before, keep):
        files.remove()
        log_event(LOG, logging.INFO, "job_expired", directory=files.url)


def expired_directories(
    store: CheckpointStore, before: float, keep: Collection[str]
) -> list[JobFiles]:
    """Job directories in ``store`` whose marker is older than ``before``, except those
    named in ``keep``."""
    expired = []
    for files in store.jobs():
        if files.name in keep:
            continue
        finished = files.modified(MARKER)
        if finished is not None and finished < before:  # None: not finished
            expired.append(files)
    return expired
