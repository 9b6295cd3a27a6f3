"""Listing, globbing, reading and writing files through a `Location`'s filesystem."""

from __future__ import annotations

import fnmatch
import glob
import io
import posixpath
from pathlib import Path
from typing import BinaryIO

import pyarrow.fs as pafs

from batchcraft._files import atomic_write
from batchcraft.errors import StorageError
from batchcraft.storage.compression import codec_of, decompressing
from batchcraft.storage.locations import Location, StorageOptions, call_store, resolve

_READ_BUFFER = 1 << 20


def kind(location: Location) -> pafs.FileType:
    """File, Directory or NotFound. An object store's prefix holding objects is a Directory."""
    return location.info().type


def list_files(location: Location) -> list[Location]:
    """Every file below a directory or prefix, recursively, sorted by path."""
    selector = pafs.FileSelector(location.path, recursive=True, allow_not_found=True)
    infos = call_store(location.url, location.filesystem.get_file_info, selector)
    paths = sorted(info.path for info in infos if info.type == pafs.FileType.File)
    return [Location(location.filesystem, path, location.root) for path in paths]


def expand_glob(given: str, options: StorageOptions | None = None) -> list[Location]:
    """The files and directories a glob matches, sorted. ``*``, ``?`` and ``[…]`` match
    within one path segment and skip hidden names unless the segment starts with ``.``,
    as the shell's and Python's ``glob`` do; each level is listed once, not recursively
    (on an object store, one delimited listing per matching prefix)."""
    pattern = resolve(given, options)
    parts = pattern.path.split("/")
    fixed = next(index for index, part in enumerate(parts) if glob.has_magic(part))
    matches = [Location(pattern.filesystem, "/".join(parts[:fixed]) or "/", pattern.root)]
    for depth, part in enumerate(parts[fixed:], start=fixed):
        last = depth == len(parts) - 1
        matches = [
            Location(pattern.filesystem, info.path.rstrip("/"), pattern.root)
            for directory in matches
            for info in _children(directory)
            if fnmatch.fnmatchcase(info.base_name, part)
            and (part.startswith(".") or not info.base_name.startswith("."))
            and (last or info.type == pafs.FileType.Directory)
        ]
    return sorted(matches, key=lambda found: found.path)


def _children(directory: Location) -> list[pafs.FileInfo]:
    selector = pafs.FileSelector(directory.path, allow_not_found=True)
    return list(call_store(directory.url, directory.filesystem.get_file_info, selector))


def open_input(location: Location) -> BinaryIO:
    """A buffered binary reader of the file as stored (seekable: ranged reads on a store)."""
    if location.is_local:
        return open(location.path, "rb")
    raw = call_store(location.url, location.filesystem.open_input_file, location.path)
    return io.BufferedReader(raw, buffer_size=_READ_BUFFER)  # type: ignore[arg-type]


def open_records(given: str, options: StorageOptions | None = None) -> BinaryIO:
    """A binary reader of the file's content: decompressed when its name ends in a codec's
    extension (`compression.CODECS`), else as stored (then seekable)."""
    location = resolve(given, options)
    stored = open_input(location)
    codec = codec_of(location.path)
    return stored if codec is None else decompressing(stored, codec)


def read_bytes(location: Location) -> bytes:
    """The whole file."""
    with open_input(location) as handle:
        return handle.read()


def write_bytes(location: Location, data: bytes) -> None:
    """Write a whole file (one PUT on an object store, where an object appears whole)."""
    if location.is_local:
        atomic_write(Path(location.path), data, fsync=False)
        return
    with call_store(
        location.url, location.filesystem.open_output_stream, location.path, compression=None
    ) as out:
        out.write(data)


def remove_tree(location: Location) -> None:
    """Remove a directory or prefix and everything below it; nothing when absent."""
    try:
        location.filesystem.delete_dir(location.path)
    except FileNotFoundError:
        return
    except OSError as error:
        raise StorageError(f"cannot remove {location.url}: {error}") from None


def relative(child: Location, parent: Location) -> str:
    """``child``'s path below ``parent``."""
    return posixpath.relpath(child.path, parent.path)
