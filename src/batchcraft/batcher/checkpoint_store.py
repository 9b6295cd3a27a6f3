"""Where job checkpoints live: a local (or shared POSIX) directory, or an object-store prefix.

`CheckpointStore` is the checkpoint directory a server was given (``--checkpoint-dir``,
a path or any URL of `batchcraft.storage`); `JobFiles` the files of one job in it,
``<root>/jobs/<job-key>/<name>``. Each file is written whole: locally to a temporary
renamed over it (fsynced unless told not to), on a store as one PUT, which an object
store applies atomically (a reader sees the old object or the new one, never a part).
S3 has read-after-write and list-after-write consistency, which the leases rely on.

Locally, a process killed mid-write leaves a temporary (`checkpoint_files`); a store
leaves none (an interrupted PUT creates nothing), and a directory is a key prefix that
exists while it holds objects.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.fs as pafs

from batchcraft._files import atomic_write, safe_file_name
from batchcraft.batcher.checkpoint_files import prepare_checkpoint_directory, remove_temporaries
from batchcraft.errors import ConfigError, StorageError
from batchcraft.storage import Location, read_bytes, remove_tree, resolve, write_bytes
from batchcraft.storage.exclusive import exclusive_create, supports_exclusive_create
from batchcraft.storage.locations import call_store

STORE_ERRORS = (OSError, StorageError)
"""What a failed read or write raises: OSError locally, StorageError from a store."""


@dataclass(frozen=True)
class JobFiles:
    """The checkpoint files of one job (see the module docstring).

    Attributes:
        location: the job's directory or key prefix.
        fsync: fsync local files before they replace the old ones.
    """

    location: Location
    fsync: bool = True

    @property
    def url(self) -> str:
        """The directory as a user would write it (in messages and logs)."""
        return self.location.url

    @property
    def name(self) -> str:
        """The job's key: its directory's last part."""
        return self.location.name

    def read(self, name: str) -> bytes | None:
        """The file ``name``'s content; None if it does not exist.

        Raises:
            OSError: it exists but cannot be read (StorageError on a store).
        """
        try:
            return read_bytes(self.location.join(name))
        except FileNotFoundError:
            return None

    def write(self, name: str, data: bytes) -> None:
        """Replace (or create) ``name`` with ``data``, whole for every reader."""
        target = self.location.join(name)
        if target.is_local:
            atomic_write(Path(target.path), data, fsync=self.fsync)
        else:
            write_bytes(target, data)

    def create(self, name: str, data: bytes) -> bool:
        """Create ``name`` holding ``data`` unless it exists; whether this call created it
        (`batchcraft.storage.exclusive`: of concurrent creators, exactly one wins)."""
        return exclusive_create(self.location.join(name), data, fsync=self.fsync)

    def delete(self, name: str) -> None:
        """Remove ``name``; nothing if it does not exist."""
        target = self.location.join(name)
        with contextlib.suppress(FileNotFoundError):
            call_store(target.url, target.filesystem.delete_file, target.path)

    def names(self) -> list[str]:
        """The names of the files directly in the job's directory (none if it is absent)."""
        selector = pafs.FileSelector(self.location.path, allow_not_found=True)
        try:
            infos = call_store(self.url, self.location.filesystem.get_file_info, selector)
        except (FileNotFoundError, NotADirectoryError):
            return []
        return [info.base_name for info in infos if info.type == pafs.FileType.File]

    def modified(self, name: str) -> float | None:
        """When ``name`` was last written (wall-clock seconds; the store's clock on a
        store); None if it does not exist."""
        info = self.location.join(name).info()
        if info.type != pafs.FileType.File or info.mtime is None:
            return None
        return info.mtime.timestamp()

    def exists(self) -> bool:
        """Whether the job's directory holds anything (or, locally, exists)."""
        return self.location.info().type != pafs.FileType.NotFound

    def remove(self) -> None:
        """Delete the job's directory with every file in it."""
        if self.location.is_local:
            shutil.rmtree(self.location.path, ignore_errors=True)
        else:
            remove_tree(self.location)

    def remove_if_empty(self) -> None:
        """Delete the job's directory if nothing is left in it (a store's prefix vanishes
        with its last object by itself)."""
        if self.location.is_local:
            with contextlib.suppress(OSError):
                os.rmdir(self.location.path)

    def remove_temporaries(self) -> None:
        """Remove the temporaries of writers killed mid-write (locally; a store has none)."""
        if self.location.is_local:
            remove_temporaries(Path(self.location.path))


@dataclass
class CheckpointStore:
    """A checkpoint directory: a local path or a store's URL.

    Args:
        root: the directory's location.
        fsync: fsync local files (off only for tests and benchmarks).
    """

    root: Location
    fsync: bool = True
    feedback_names: dict[str, str] = field(default_factory=dict)
    """Per job id, the feedback file its latest ``state.json`` names (`checkpoint`)."""

    @classmethod
    def at(cls, given: str | Path, *, fsync: bool = True) -> CheckpointStore:
        """The store of a path or URL (``s3://bucket/prefix``).

        Raises:
            StorageError: the URL's store is not installed.
        """
        return cls(resolve(str(given)), fsync)

    @property
    def url(self) -> str:
        """The directory as a user would write it."""
        return self.root.url

    @property
    def is_local(self) -> bool:
        """Whether it is a local (or shared POSIX) directory."""
        return self.root.is_local

    def job(self, job_id: str) -> JobFiles:
        """The files of ``job_id``: a readable prefix plus a hash (ids may hold any character)."""
        return JobFiles(self.root.join("jobs", safe_file_name(job_id)), self.fsync)

    def jobs(self) -> list[JobFiles]:
        """The files of every job with a directory in the store."""
        jobs = self.root.join("jobs")
        selector = pafs.FileSelector(jobs.path, allow_not_found=True)
        infos = call_store(jobs.url, jobs.filesystem.get_file_info, selector)
        return [
            JobFiles(jobs.join(info.base_name), self.fsync)
            for info in infos
            if info.type == pafs.FileType.Directory
        ]

    def prepare(self) -> None:
        """At server start: check that the directory can be written (locally, also remove
        stale temporaries); on a store, write and delete a probe object.

        Raises:
            OutputError: a local directory is not writable.
            StorageError: the store cannot be reached or refuses the credentials.
        """
        if self.root.is_local:
            prepare_checkpoint_directory(Path(self.root.path))
            return
        probe = self.root.join(f".write-probe.{uuid.uuid4().hex}")
        write_bytes(probe, b"")
        call_store(probe.url, probe.filesystem.delete_file, probe.path)

    def check_leases(self) -> None:
        """Refuse leases on a store that cannot create a file exclusively.

        Raises:
            ConfigError: naming the store and why.
        """
        reason = supports_exclusive_create(self.root)
        if reason is not None:
            raise ConfigError(f"--lease-seconds with --checkpoint-dir {self.url}: {reason}")
