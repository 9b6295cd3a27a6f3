"""Writing a curated dataset's files: Parquet shards, shard numbering, the atomic commit.

What the files hold is the contract of `batchcraft.dataset`."""

from __future__ import annotations

import fnmatch
import os
import shutil
import socket
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType

import pyarrow as pa
import pyarrow.parquet as pq

from batchcraft.dataset import layout
from batchcraft.errors import OutputError
from batchcraft.storage import Location, list_files, resolve


def write_parquet(
    batches: Iterable[pa.RecordBatch], target: Path | Location, schema: pa.Schema
) -> int:
    """Write batches to ``target`` atomically; returns the row count. Locally a temporary
    name is renamed; on an object store the object appears whole when its upload ends."""
    if isinstance(target, Location) and not target.is_local:
        with pq.ParquetWriter(
            target.path, schema, compression="zstd", filesystem=target.filesystem
        ) as writer:
            return _write_batches(writer, batches)
    path = Path(target.path) if isinstance(target, Location) else target
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with pq.ParquetWriter(temporary, schema, compression="zstd") as writer:
        rows = _write_batches(writer, batches)
    os.replace(temporary, path)
    return rows


def _write_batches(writer: pq.ParquetWriter, batches: Iterable[pa.RecordBatch]) -> int:
    rows = 0
    for batch in batches:
        writer.write_batch(batch)
        rows += batch.num_rows
    return rows


OWNER_FILE = ".owner"
"""In a staging directory: the host and process id of the run writing it."""
STALE_SECONDS = 24 * 3600
"""A leftover of another host (or without an owner) is removed once untouched this long."""


class StagedOutput:
    """A dataset directory built under a staging name and renamed into place on success.

    A failed run removes the staging directory, so no half-written dataset is ever visible
    under the final name; an existing dataset is replaced only with ``overwrite``. A run
    that was killed cannot clean up: each staging directory names its owner (host and
    process id), and the next run removes those whose process no longer runs on this host
    (or, for another host's, that nothing touched for `STALE_SECONDS`).
    """

    def __init__(self, final: str | Path, overwrite: bool = False) -> None:
        self.final = Path(final).absolute()
        if self.final.exists() and not overwrite:
            raise OutputError(f"output {self.final} already exists; pass --overwrite to replace it")
        if self.final.exists() and not self.final.is_dir():
            raise OutputError(f"output {self.final} exists and is not a directory")
        self.staging = self.final.with_name(f".{self.final.name}.staging-{uuid.uuid4().hex[:8]}")

    @property
    def location(self) -> Location:
        """The staging directory, as the job's stages write it."""
        return resolve(str(self.staging))

    def __enter__(self) -> StagedOutput:
        try:
            self.final.parent.mkdir(parents=True, exist_ok=True)
            remove_stale_leftovers(self.final)
            layout.data_dir(self.staging).mkdir(parents=True)
            layout.rejects_dir(self.staging).mkdir()
            (self.staging / OWNER_FILE).write_text(f"{socket.gethostname()} {os.getpid()}\n")
        except OSError as exc:
            raise OutputError(f"cannot create output next to {self.final}: {exc.strerror}") from exc
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if kind is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            return
        (self.staging / OWNER_FILE).unlink(missing_ok=True)  # not part of the dataset
        retired = self.final.with_name(f".{self.final.name}.old-{uuid.uuid4().hex[:8]}")
        if self.final.exists():
            os.replace(self.final, retired)
        os.replace(self.staging, self.final)
        shutil.rmtree(retired, ignore_errors=True)


def remove_stale_leftovers(final: Path) -> list[Path]:
    """Remove the staging and retired directories that killed runs left beside ``final``;
    returns what was removed. A directory of a run still going is left alone."""
    removed = []
    for pattern in (f".{final.name}.staging-*", f".{final.name}.old-*"):
        for leftover in final.parent.glob(pattern):
            if leftover.is_dir() and not _owner_alive(leftover):
                shutil.rmtree(leftover, ignore_errors=True)
                removed.append(leftover)
    return removed


def _owner_alive(directory: Path) -> bool:
    """Whether the run that made ``directory`` may still be writing it."""
    try:
        owner = (directory / OWNER_FILE).read_text()
    except OSError:  # no owner recorded: judge by age
        return _recently_touched(directory)
    return owner_alive(owner, lambda: _recently_touched(directory))


def owner_alive(owner: str, recently_touched: Callable[[], bool]) -> bool:
    """Whether the run an OWNER_FILE's text names may still be writing: its process runs,
    or it is another host's (or unreadable) and ``recently_touched`` says so."""
    try:
        host, pid = owner.split()
    except ValueError:
        return recently_touched()
    if host != socket.gethostname():
        return recently_touched()
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


def _recently_touched(directory: Path) -> bool:
    try:
        return time.time() - directory.stat().st_mtime < STALE_SECONDS
    except OSError:
        return False


def number_shards(root: Location) -> list[str]:
    """Rename the shards written by tasks under ``root/data`` to the contract's contiguous
    shard names (`layout.shard_name`); their names, in order."""
    data = root.join(layout.DATA_DIR)
    written = [f for f in list_files(data) if fnmatch.fnmatchcase(f.name, "task-*.parquet")]
    final = []
    for index, shard in enumerate(sorted(written, key=lambda found: found.path)):
        target = root.join(layout.shard_name(index))
        root.filesystem.move(shard.path, target.path)  # on an object store: copy, delete
        final.append(target.name)
    return final
