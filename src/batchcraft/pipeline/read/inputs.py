"""Input discovery, checks and read planning; all of it runs on the driver before any Spark work.

A user's mistake (a path that does not exist, a wrong column name, a corrupt Parquet
footer) stops the job here with a message naming the file and the columns it has.
The read plan splits the inputs into chunks (byte ranges of JSONL files, Parquet row
groups, whole CSV files, groups of ``.txt`` files) that executors parse independently.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from batchcraft.errors import InputError

FORMATS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "txt",
}
JSONL_CHUNK_BYTES = 32 * 1024 * 1024
TXT_FILES_PER_CHUNK = 256
TXT_COLUMNS = ("text", "id")  # the one record of a .txt file (readers._txt_records)
_SNIFF_LINES = 2000
_FULL_HASH_LIMIT = 1 << 30


@dataclass(frozen=True)
class InputFile:
    """One input file, as recorded in the manifest."""

    path: str
    format: str
    source: str
    bytes: int
    sha256: str


@dataclass(frozen=True)
class Chunk:
    """A unit of parsing work: a byte range, a row group or a list of text files.

    ``file_index`` is the position of ``path`` among the planned input files. A chunk of
    ``.txt`` files, whose records are files, also gives each of its ``paths`` own position
    in ``file_indices`` (a source's ``.txt`` files need not be next to each other).
    """

    file_index: int
    path: str
    format: str
    source: str
    start: int
    end: int
    paths: tuple[str, ...] = ()
    file_indices: tuple[int, ...] = ()

    def file_index_of(self, record: int) -> int:
        """The position among the input files of the file that holds ``record``."""
        if self.file_indices:  # .txt: record `start + i` is the file `paths[i]`
            return self.file_indices[record - self.start]
        return self.file_index


def discover(inputs: tuple[str, ...] | list[str], source: str | None = None) -> list[InputFile]:
    """Expand paths, directories and globs into a sorted list of input files.

    Raises:
        InputError: a path matches nothing, has an unsupported extension, or cannot be read.
    """
    files: list[tuple[str, str]] = []
    for given in inputs:
        matches = sorted(glob.glob(given)) if glob.has_magic(given) else [given]
        if not matches:
            raise InputError(f"input {given!r} matches no file")
        for match in matches:
            files.extend(_expand(match, source))
    if not files:
        raise InputError(f"no input files found in {list(inputs)}")
    seen: set[str] = set()
    result = []
    for path, name in files:
        if path not in seen:
            seen.add(path)
            result.append(_describe(path, name))
    return result


def _expand(path: str, source: str | None) -> list[tuple[str, str]]:
    if os.path.isdir(path):
        found = sorted(str(p) for p in Path(path).rglob("*") if p.is_file() and p.suffix in FORMATS)
        if not found:
            raise InputError(f"directory {path} holds no {sorted(set(FORMATS))} files")
        dir_source = source or Path(path).name
        return [(p, source or (dir_source if p.endswith(".txt") else Path(p).stem)) for p in found]
    if not os.path.exists(path):
        raise InputError(f"input {path} does not exist")
    if Path(path).suffix not in FORMATS:
        raise InputError(f"input {path} has an unsupported format; supported: {sorted(FORMATS)}")
    return [(path, source or Path(path).stem)]


def _describe(path: str, source: str) -> InputFile:
    try:
        size = os.path.getsize(path)
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            if size <= _FULL_HASH_LIMIT:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            else:  # head + tail + size of huge files: a fingerprint, not a checksum
                digest.update(handle.read(1 << 24))
                handle.seek(size - (1 << 24))
                digest.update(handle.read())
                digest.update(str(size).encode())
    except OSError as exc:
        raise InputError(f"cannot read input {path}: {exc.strerror}") from exc
    return InputFile(
        path=os.path.abspath(path),
        format=FORMATS[Path(path).suffix],
        source=source,
        bytes=size,
        sha256=digest.hexdigest(),
    )


def check_columns(files: list[InputFile], required: Mapping[str, str | None]) -> None:
    """Fail fast when a mapped column is absent from an input.

    Args:
        files: The discovered inputs.
        required: Flag name -> column name (``None`` when the flag is not used).

    Raises:
        InputError: naming the file, the missing column and the columns it has.
    """
    wanted = {flag: column for flag, column in required.items() if column}
    for file in files:
        available = _columns_of(file)
        if available is None:  # empty file: nothing to check
            continue
        for flag, column in wanted.items():
            if column not in available and file.format == "txt":
                raise InputError(
                    f"{flag} {column!r} does not apply to {file.path}: a .txt file is one "
                    "record whose only columns are 'text' (its content) and 'id' (its file name)"
                )
            if column not in available:
                raise InputError(
                    f"{flag} {column!r} not found in {file.path}; its columns are {sorted(available)}"
                )


def _columns_of(file: InputFile) -> set[str] | None:
    if file.format == "txt":
        return set(TXT_COLUMNS)
    columns = input_columns(file)
    return None if columns is None else set(columns)


def input_columns(file: InputFile) -> dict[str, pa.DataType | None] | None:
    """The columns of one input, in their order, with their Arrow type where the file
    states it: Parquet's schema; text for CSV (a cell is text); None for JSONL, whose
    types only a read of every record tells (``column_types.survey_json_chunk``), and
    whose keys are those of its first records. A ``.txt`` file has none of its own
    (its 'text' and 'id' are the record); None for an empty file.

    Raises:
        InputError: the file cannot be read, or its Parquet footer is corrupt.
    """
    if file.format == "txt":
        return {}
    try:
        if file.format == "parquet":
            schema = pq.read_schema(file.path)
            return {field.name: field.type for field in schema}
        if file.format == "csv":
            with open(file.path, encoding="utf-8", errors="replace", newline="") as handle:
                header = next(csv.reader(handle, delimiter=_delimiter(file.path)), None)
            return dict.fromkeys(header, pa.string()) if header else None
        keys = _jsonl_keys(file.path)
        return None if keys is None else dict.fromkeys(keys)
    except OSError as exc:
        raise InputError(f"cannot read input {file.path}: {exc}") from exc
    except Exception as exc:  # pyarrow raises ArrowInvalid for a corrupt footer
        raise InputError(f"cannot read input {file.path}: {exc}") from exc


def _jsonl_keys(path: str) -> list[str] | None:
    keys: dict[str, None] = {}
    parsed = 0
    with open(path, "rb") as handle:
        for line in handle:
            if parsed >= _SNIFF_LINES:
                break
            try:
                record = json.loads(line)
            except (ValueError, UnicodeDecodeError, RecursionError):
                continue  # the parse rejects it, with its reason
            if isinstance(record, dict):
                keys.update(dict.fromkeys(record))
                parsed += 1
    return list(keys) if parsed else None


def _delimiter(path: str) -> str:
    return "\t" if path.endswith(".tsv") else ","


def position_words(file: InputFile) -> tuple[str, str]:
    """The words before and after a record's ``record`` position that say where it is.

    ``record`` is the line's byte offset in JSONL, the row (from 0) in Parquet, the data row
    (from 1, after the header) in CSV, and for ``.txt`` files the position (from 0) of the
    file among its source's ``.txt`` files: ``before + str(record) + after`` reads, e.g.,
    "the line at byte 120 of /data/b.jsonl" or "/data/c.txt, the .txt file at position 2 of
    source 'data'".
    """
    if file.format == "jsonl":
        return "the line at byte ", f" of {file.path}"
    if file.format == "csv":
        return "data row ", f" of {file.path}"
    if file.format == "parquet":
        return "row ", f" of {file.path}"
    return f"{file.path}, the .txt file at position ", f" of source {file.source!r}"


def plan_chunks(files: list[InputFile]) -> list[Chunk]:
    """Split the inputs into independently parseable chunks, in a deterministic order."""
    chunks: list[Chunk] = []
    txt_groups: dict[str, list[int]] = {}  # source -> indices of its .txt files
    for index, file in enumerate(files):
        if file.format == "jsonl":
            for start in range(0, max(file.bytes, 1), JSONL_CHUNK_BYTES):
                end = min(start + JSONL_CHUNK_BYTES, file.bytes)
                chunks.append(Chunk(index, file.path, "jsonl", file.source, start, end))
        elif file.format == "parquet":
            groups = pq.ParquetFile(file.path).metadata.num_row_groups
            chunks.extend(
                Chunk(index, file.path, "parquet", file.source, g, g + 1) for g in range(groups)
            )
        elif file.format == "csv":
            chunks.append(Chunk(index, file.path, "csv", file.source, 0, file.bytes))
        else:
            txt_groups.setdefault(file.source, []).append(index)
    for source, indices in txt_groups.items():
        for offset in range(0, len(indices), TXT_FILES_PER_CHUNK):
            group = indices[offset : offset + TXT_FILES_PER_CHUNK]
            paths = tuple(files[i].path for i in group)
            chunks.append(
                Chunk(group[0], paths[0], "txt", source, offset, offset, paths, tuple(group))
            )
    return chunks
