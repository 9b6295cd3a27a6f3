"""The atomic-output promise on an object store, where a directory cannot be renamed.

The dataset is written under a staging prefix beside ``--out`` (``.NAME.staging-XXXXXXXX``),
then published: the old manifest goes first (a reader that finds no manifest treats the
directory as absent: `batchcraft.dataset.layout`), then the old files, then the new files
are copied in (server-side copies), and the manifest comes last. A reader therefore sees the
old dataset, no dataset, or the new one, never a mix. Killed runs' staging prefixes are
removed by the next run, as on a local disk (`files.StagedOutput`).
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import socket
import time
import uuid
from types import TracebackType

import pyarrow.fs as pafs

from batchcraft.dataset import layout
from batchcraft.errors import OutputError, StorageError
from batchcraft.pipeline.write.files import OWNER_FILE, STALE_SECONDS, StagedOutput, owner_alive
from batchcraft.storage import (
    Location,
    StorageOptions,
    kind,
    list_files,
    read_bytes,
    relative,
    remove_tree,
    resolve,
    write_bytes,
)


class StagedPrefix:
    """A dataset built under a staging prefix of an object store and published on success
    (see the module's docstring); a failed run removes its staging prefix."""

    def __init__(self, final: Location, overwrite: bool = False) -> None:
        self.final = final
        if kind(final) == pafs.FileType.File:
            raise OutputError(f"output {final.url} exists and is not a directory")
        if kind(final.join(layout.MANIFEST)) == pafs.FileType.File and not overwrite:
            raise OutputError(f"output {final.url} already exists; pass --overwrite to replace it")
        self.location = final.sibling(f".{final.name}.staging-{uuid.uuid4().hex[:8]}")

    def __enter__(self) -> StagedPrefix:
        remove_stale_prefixes(self.final)
        owner = f"{socket.gethostname()} {os.getpid()}\n".encode()
        try:
            write_bytes(self.location.join(OWNER_FILE), owner)
        except StorageError as error:
            raise OutputError(f"cannot write output next to {self.final.url}: {error}") from None
        return self

    def __exit__(
        self,
        kind_: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        try:
            if kind_ is None:
                publish(self.location, self.final)
        except OSError as failure:  # the store failed mid-publish: no manifest, no dataset
            raise OutputError(
                f"cannot publish {self.final.url}: {' '.join(str(failure).split())[:300]} "
                "(it holds no manifest.json now, so readers see no dataset; run again)"
            ) from None
        finally:  # a prefix left behind is removed by the next run: never hide the error
            with contextlib.suppress(StorageError):
                remove_tree(self.location)


def publish(staging: Location, final: Location) -> None:
    """Replace the dataset at ``final`` by the one at ``staging``, manifest last."""
    filesystem = final.filesystem
    manifest = final.join(layout.MANIFEST)
    if kind(manifest) == pafs.FileType.File:
        filesystem.delete_file(manifest.path)  # from here on the old dataset is absent
    if kind(final) == pafs.FileType.Directory:
        filesystem.delete_dir_contents(final.path, missing_dir_ok=True)
    written = [f for f in list_files(staging) if f.name not in (OWNER_FILE, layout.MANIFEST)]
    for file in written:
        filesystem.copy_file(file.path, final.join(relative(file, staging)).path)
    filesystem.copy_file(staging.join(layout.MANIFEST).path, manifest.path)


def remove_stale_prefixes(final: Location) -> list[Location]:
    """Remove the staging prefixes killed runs left beside ``final``; returns what went.
    One whose run may still be going (its owner runs on this host, or its owner file was
    written within `STALE_SECONDS` by another host) is left alone."""
    parent = final.sibling("")
    selector = pafs.FileSelector(parent.path.rstrip("/") or "/", allow_not_found=True)
    removed = []
    for info in final.filesystem.get_file_info(selector):
        name = info.path.rstrip("/").rsplit("/", 1)[-1]
        if fnmatch.fnmatchcase(name, f".{final.name}.staging-*"):
            leftover = Location(final.filesystem, info.path.rstrip("/"), final.root)
            if not prefix_owner_alive(leftover):
                remove_tree(leftover)
                removed.append(leftover)
    return removed


def prefix_owner_alive(prefix: Location) -> bool:
    """Whether the run that wrote ``prefix`` (its OWNER_FILE says) may still be writing it."""
    owner = prefix.join(OWNER_FILE)
    try:
        text, written = read_bytes(owner).decode(), owner.info().mtime
    except (OSError, UnicodeDecodeError, StorageError):  # no owner: nothing to wait for
        return False
    recent = written is not None and time.time() - written.timestamp() < STALE_SECONDS
    return owner_alive(text, lambda: recent)


def staged_output(
    out: str, overwrite: bool = False, options: StorageOptions | None = None
) -> StagedOutput | StagedPrefix:
    """The staged output of ``out``: a renamed directory on a local disk, a published
    prefix on any other store."""
    final = resolve(out, options)
    if final.is_local:
        return StagedOutput(final.path, overwrite)
    return StagedPrefix(final, overwrite)
