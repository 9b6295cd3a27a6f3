"""Finding the input files: paths, directories or prefixes, and globs, on any store.

Everything here runs on the driver before any Spark work. It reads local files to
fingerprint them (and a compressed one to check its stream is whole), but only the head
and tail of files in a store: the executors read their own chunks from the store, and
nothing of a corpus passes through the driver.
"""

from __future__ import annotations

import glob
import hashlib
import json
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow.fs as pafs

from batchcraft.errors import InputError, StorageError
from batchcraft.storage import (
    DECODE_ERRORS,
    Location,
    codec_of,
    damage,
    decompressing,
    expand_glob,
    kind,
    list_files,
    open_input,
    resolve,
    without_codec,
)

FORMATS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "txt",
}
COMPRESSIBLE = frozenset({"jsonl", "csv", "txt"})
"""Formats read from ``.gz``/``.bz2``/``.zst``/``.xz`` files (Parquet compresses inside)."""
_FULL_HASH_LIMIT = 1 << 30
_LOCAL_SAMPLE = 1 << 24  # head and tail of a local file past the limit
_STORE_SAMPLE = 1 << 20  # head and tail of a file in a store (two ranged reads)
_BLOCK = 1 << 20


@dataclass(frozen=True)
class InputFile:
    """One input file, as recorded in the manifest.

    ``path`` is a plain absolute path for a local file, else its URL (``s3://b/k``);
    ``storage`` the storage options its store is opened with (JSON text, empty for none).
    """

    path: str
    format: str
    source: str
    bytes: int
    sha256: str
    storage: str = ""

    @property
    def compressed(self) -> bool:
        """Whether the file is read through a codec (and so in one piece)."""
        return codec_of(self.path) is not None


def storage_json(options: Mapping[str, Any] | None) -> str:
    """Storage options as the text an InputFile and a Chunk carry to the executors."""
    return json.dumps(dict(options), sort_keys=True) if options else ""


def storage_options(text: str) -> dict[str, Any]:
    """The storage options of `storage_json`'s text."""
    return json.loads(text) if text else {}


def discover(
    inputs: tuple[str, ...] | list[str],
    source: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> list[InputFile]:
    """Expand paths, directories (or prefixes) and globs into a sorted list of input files.

    Raises:
        InputError: a path matches nothing, has an unsupported extension, or cannot be read.
        StorageError: a store is not installed or cannot be reached.
    """
    files: list[tuple[Location, str]] = []
    for given in inputs:
        if glob.has_magic(given):
            matches = expand_glob(given, options)
            if not matches:
                raise InputError(f"input {given!r} matches no file")
            for match in matches:
                files.extend(_expand(match, source))
        else:
            files.extend(_expand(resolve(given, options), source))
    if not files:
        raise InputError(f"no input files found in {list(inputs)}")
    seen: set[str] = set()
    result = []
    for location, name in files:
        if location.url not in seen:
            seen.add(location.url)
            result.append(_describe(location, name, storage_json(options)))
    return result


def format_of(path: str) -> str | None:
    """The input format of a file name (``a.jsonl.gz`` -> ``jsonl``); None when unsupported."""
    plain = without_codec(path)
    found = FORMATS.get(posixpath.splitext(plain)[1])
    if found is None or (plain != path and found not in COMPRESSIBLE):
        return None
    return found


def stem(path: str) -> str:
    """A file's name without its format's and codec's extensions (``a.jsonl.gz`` -> ``a``)."""
    return posixpath.splitext(posixpath.basename(without_codec(path)))[0]


def _expand(location: Location, source: str | None) -> list[tuple[Location, str]]:
    found_kind = kind(location)
    if found_kind == pafs.FileType.Directory:
        found = [f for f in list_files(location) if format_of(f.path)]
        if not found:
            raise InputError(
                f"directory {location.url} holds no {sorted(set(FORMATS))} files "
                "(optionally compressed: .gz, .bz2, .zst, .xz)"
            )
        dir_source = source or location.name
        return [
            (f, source or (dir_source if format_of(f.path) == "txt" else stem(f.path)))
            for f in found
        ]
    if found_kind == pafs.FileType.NotFound:
        raise InputError(f"input {location.url} does not exist")
    if format_of(location.path) is None:
        raise InputError(
            f"input {location.url} has an unsupported format; supported: {sorted(FORMATS)}, "
            "and .jsonl/.csv/.tsv/.txt compressed as .gz, .bz2, .zst or .xz"
        )
    return [(location, source or stem(location.path))]


class _Hashing:
    """A reader that hashes the bytes it passes on (to fingerprint while decompressing)."""

    def __init__(self, stored: Any, digest: Any) -> None:
        self.stored, self.digest = stored, digest

    def read(self, size: int = -1) -> bytes:
        data = self.stored.read(size)
        self.digest.update(data)
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    @property
    def closed(self) -> bool:
        return bool(self.stored.closed)

    def close(self) -> None:
        self.stored.close()


def _describe(location: Location, source: str, storage: str) -> InputFile:
    """The file's fingerprint. A local file up to 1 GiB is read whole (and a compressed one
    decompressed to the end, so a damaged or truncated one stops the job here, before Spark
    starts). Any other is fingerprinted by its size, head and tail (and on a store its time),
    so the driver never downloads a corpus: the executors reading it find any damage."""
    info = location.info()
    size = info.size
    digest = hashlib.sha256()
    codec = codec_of(location.path)
    try:
        with open_input(location) as handle:
            if not location.is_local or size > _FULL_HASH_LIMIT:  # a fingerprint, no checksum
                sample = _STORE_SAMPLE if not location.is_local else _LOCAL_SAMPLE
                digest.update(handle.read(sample))
                handle.seek(max(0, size - sample))
                digest.update(handle.read())
                digest.update(f"{size} {info.mtime_ns if not location.is_local else ''}".encode())
            elif codec is None:
                for block in iter(lambda: handle.read(_BLOCK), b""):
                    digest.update(block)
            else:
                content = decompressing(_Hashing(handle, digest), codec)  # type: ignore[arg-type]
                while content.read(_BLOCK):
                    pass
                digest.update(handle.read())  # bytes after the stream's end, if any
    except DECODE_ERRORS as error:
        if codec is not None and not isinstance(error, StorageError | FileNotFoundError):
            raise InputError(str(damage(location.url, error))) from None
        raise InputError(f"cannot read input {location.url}: {error}") from error
    return InputFile(
        path=location.url,
        format=format_of(location.path) or "",
        source=source,
        bytes=size,
        sha256=digest.hexdigest(),
        storage=storage,
    )
