"""Job leases: one replica owns a job at a time, through files in the shared checkpoint store.

Replicas that share a checkpoint directory must never serve one job together:
each would select, cache and save its own state, and the last writer would
overwrite the other's cursors and feedback. A replica therefore owns a job
only while it holds the job's *lease*, a file in the job's checkpoint
directory, ``lease.<generation>``, holding JSON::

    {"job_id": ..., "generation": 7, "holder": "host:pid:port",
     "address": "host:port", "expires": <wall-clock seconds; 0 once released>}

- **Taking** a lease creates generation g + 1, where g is the highest generation
  present, only if that name does not exist yet (`JobFiles.create`: locally a
  temporary hard-linked to its name, which fails if the name exists, on local
  filesystems as on NFS; on S3 a PutObject with ``If-None-Match: *``, refused
  when the key exists): of several replicas taking a job at once, exactly one
  succeeds. A store without such a create is refused for leases at start. A replica may take a job whose latest
  lease is its own, released, or expired; older generations are then removed.
- **Renewal.** The holder rewrites its generation (a rename; one PUT on S3) every
  ``interval = lease_seconds / RENEWALS_PER_LEASE`` seconds with ``expires =
  now + lease_seconds``: a lease outlives two missed renewals. A holder that
  finds a higher generation has lost the job (it stalled past the expiry and
  another replica took over): it drops the job without saving.
- **Its own view is shorter.** The holder counts its lease valid for
  ``lease_seconds - interval`` after the start of its latest successful renewal
  (on its monotonic clock), the others wait for ``expires`` (on theirs): the
  interval between the two covers the clock difference of the hosts and a
  check made just before a save. `JobLeases.holds` is what the registry asks
  before it serves or saves a job.
- **Redirects.** A replica asked for a job another one holds names the holder's
  address (`JobMovedError`), unless the holder missed a renewal and a half: then the
  holder is likely dead, and the client is told to come back when the lease expires.
- **Release.** A replica that drops a job (idle, expired, at shutdown) rewrites
  its lease with ``expires = 0``: the next replica takes it at once.

A replica killed while holding leases leaves them to expire: another replica
takes the job over ``lease_seconds`` after its last renewal at most (between
``lease_seconds - interval`` and ``lease_seconds`` after the kill), then reads
the job's checkpoint, which the dead holder can no longer write.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from batchcraft.batcher.checkpoint_store import STORE_ERRORS, JobFiles
from batchcraft.batcher.errors import JobMovedError
from batchcraft.errors import ConfigError

RENEWALS_PER_LEASE = 3
"""Renewals in one lease's lifetime: the expiry is this many renewal intervals."""
PREFIX = "lease."


@dataclass(frozen=True)
class LeaseRecord:
    """The content of one lease file (see the module docstring)."""

    job_id: str
    generation: int
    holder: str
    address: str
    expires: float

    def to_json(self) -> bytes:
        """The file's bytes."""
        return json.dumps(self.__dict__).encode()


def latest_lease(directory: JobFiles) -> LeaseRecord | None:
    """The highest-generation lease in a job's checkpoint ``directory``; None if it has none.

    A file that is not a lease record (written by hand, or by another program) counts as
    an expired lease of its generation: it must not keep a job from being served. A store
    that cannot be read raises StorageError: a lease it may hold is not taken for expired.
    """
    generations = _generations(directory)
    if not generations:
        return None
    generation = max(generations)
    try:
        data = directory.read(f"{PREFIX}{generation}")
        if data is None:  # removed by a newer holder since: read again
            return latest_lease(directory)
        fields = json.loads(data)
        return LeaseRecord(**{**fields, "generation": generation})
    except (OSError, ValueError, TypeError):  # not StorageError: the store is out of reach
        return LeaseRecord("", generation, "", "", 0.0)


def _generations(directory: JobFiles) -> list[int]:
    suffixes = (name[len(PREFIX) :] for name in directory.names() if name.startswith(PREFIX))
    return [int(suffix) for suffix in suffixes if suffix.isdigit()]


@dataclass
class _Held:
    generation: int
    valid_until: float  # monotonic


class JobLeases:
    """The leases one replica holds on jobs under a checkpoint directory (thread-safe).

    Args:
        directory_of: the checkpoint files of a job id (`CheckpointStore.job`).
        holder: this replica's identity, ``host:pid:port``.
        address: where clients reach this replica (named in redirects).
        lease_seconds: a lease's lifetime after its latest renewal.
        clock: wall-clock seconds (written to, and compared with, ``expires``).
        monotonic: this replica's own clock for the validity of its leases.
    """

    def __init__(
        self,
        directory_of: Callable[[str], JobFiles],
        holder: str,
        address: str,
        lease_seconds: float,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not lease_seconds > 0:
            raise ConfigError(f"{lease_seconds=} must be > 0")
        self.directory_of = directory_of
        self.holder = holder
        self.address = address
        self.lease_seconds = lease_seconds
        self.interval = lease_seconds / RENEWALS_PER_LEASE
        self.clock = clock
        self.monotonic = monotonic
        self._held: dict[str, _Held] = {}
        self._lock = threading.Lock()

    def acquire(self, job_id: str) -> None:
        """Take (or keep) the lease of ``job_id``.

        Raises:
            JobMovedError: another replica holds a lease on the job that has not expired;
                it names that replica's address.
            OSError, StorageError: the lease file could not be written.
        """
        with self._lock:
            if self._valid(job_id):
                return
            self._held.pop(job_id, None)
            directory = self.directory_of(job_id)
            latest = latest_lease(directory)
            if latest is not None and latest.holder != self.holder:
                left = latest.expires - self.clock()
                if left > 0:
                    # a holder that missed its renewals is likely dead: clients wait for
                    # the expiry here rather than being sent to an address that may hang
                    alive = left > self.lease_seconds - 1.5 * self.interval
                    raise JobMovedError(job_id, latest.address if alive else "", left)
            generation = 1 if latest is None else latest.generation + 1
            started = self.monotonic()
            record = self._record(job_id, generation)
            if not directory.create(f"{PREFIX}{generation}", record.to_json()):
                taken = latest_lease(directory)  # another replica was quicker
                address = taken.address if taken is not None else ""
                raise JobMovedError(job_id, address, self.lease_seconds)
            for older in _generations(directory):
                if older < generation:
                    directory.delete(f"{PREFIX}{older}")
            self._held[job_id] = _Held(generation, started + self.lease_seconds - self.interval)

    def holds(self, job_id: str) -> bool:
        """Whether this replica holds ``job_id``'s lease and may serve and save the job."""
        with self._lock:
            return self._valid(job_id)

    def _valid(self, job_id: str) -> bool:
        held = self._held.get(job_id)
        return held is not None and self.monotonic() < held.valid_until

    def held(self) -> list[str]:
        """The job ids whose leases this replica holds."""
        with self._lock:
            return list(self._held)

    def renew(self) -> list[str]:
        """Renew every lease held; returns the job ids whose leases were lost (taken by
        another replica, or past their validity because renewals failed)."""
        lost = []
        for job_id in self.held():
            try:
                if not self._renew(job_id):
                    lost.append(job_id)
            except (
                STORE_ERRORS
            ):  # a disk or store problem: the next renewal may succeed, until validity ends
                if not self.holds(job_id):
                    lost.append(job_id)
        with self._lock:
            for job_id in lost:
                self._held.pop(job_id, None)
        return lost

    def _renew(self, job_id: str) -> bool:
        with self._lock:
            held = self._held.get(job_id)
        if held is None:
            return True  # released meanwhile
        directory = self.directory_of(job_id)
        if max(_generations(directory), default=0) != held.generation:
            return False
        started = self.monotonic()
        if started >= held.valid_until:
            return False  # others may already have taken it: never write it back
        record = self._record(job_id, held.generation)
        directory.write(f"{PREFIX}{held.generation}", record.to_json())
        with self._lock:
            held.valid_until = started + self.lease_seconds - self.interval
        return True

    def release(self, job_id: str, *, remove: bool = False) -> None:
        """Give up ``job_id``'s lease: the next replica may take the job at once.

        Args:
            job_id: the job.
            remove: delete the lease file (and the job's directory, if that leaves it
                empty) instead of marking it released: for a job that was refused, so
                that requests for jobs that never ran leave no files behind.
        """
        with self._lock:
            held = self._held.pop(job_id, None)
            if held is None or self.monotonic() >= held.valid_until:
                return
            directory = self.directory_of(job_id)
            if max(_generations(directory), default=0) != held.generation:
                return
            name = f"{PREFIX}{held.generation}"
            released = LeaseRecord(job_id, held.generation, self.holder, self.address, 0.0)
            with contextlib.suppress(*STORE_ERRORS):  # else it expires: later, same effect
                if remove:
                    directory.delete(name)
                    directory.remove_if_empty()  # a job with files keeps them
                else:
                    directory.write(name, released.to_json())

    def run(self, stop: threading.Event, on_lost: Callable[[Iterable[str]], None]) -> None:
        """Renew every ``interval`` seconds until ``stop`` is set, calling ``on_lost`` with
        the jobs lost at each round (thread target)."""
        while not stop.wait(self.interval):
            lost = self.renew()
            if lost:
                on_lost(lost)

    def _record(self, job_id: str, generation: int) -> LeaseRecord:
        expires = self.clock() + self.lease_seconds
        return LeaseRecord(job_id, generation, self.holder, self.address, expires)
