"""Input checks and read planning (finding the files is `discovery`'s); all of it runs on
the driver before any Spark work.

A user's mistake (a path that does not exist, a wrong column name, a corrupt Parquet
footer) stops the job here with a message naming the file and the columns it has.
The read plan splits the inputs into chunks (byte ranges of JSONL files, Parquet row
groups, whole CSV and compressed files, groups of ``.txt`` files) that executors read
from the inputs' store and parse independently.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from batchcraft.errors import InputError, StorageError
from batchcraft.pipeline.read.discovery import InputFile, storage_options
from batchcraft.pipeline.read.discovery import discover as discover  # where callers look
from batchcraft.storage import DECODE_ERRORS, open_records, resolve

JSONL_CHUNK_BYTES = 32 * 1024 * 1024
TXT_FILES_PER_CHUNK = 256
TXT_COLUMNS = ("text", "id")  # the one record of a .txt file (readers._txt_records)
_SNIFF_LINES = 2000
WHOLE_FILE = 1 << 62
"""The end of a chunk that is a whole compressed file (its decompressed size is unknown)."""


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
    storage: str = ""  # the storage options of its store (`discovery.storage_json`)

    def file_index_of(self, record: int) -> int:
        """The position among the input files of the file that holds ``record``."""
        if self.file_indices:  # .txt: record `start + i` is the file `paths[i]`
            return self.file_indices[record - self.start]
        return self.file_index


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
            return {field.name: field.type for field in parquet_file(file).schema_arrow}
        if file.format == "csv":
            with open_records(file.path, storage_options(file.storage)) as stored:
                handle = io.TextIOWrapper(stored, encoding="utf-8", errors="replace", newline="")
                header = next(csv.reader(handle, delimiter=_delimiter(file.path)), None)
            return dict.fromkeys(header, pa.string()) if header else None
        keys = _jsonl_keys(file)
        return None if keys is None else dict.fromkeys(keys)
    except StorageError:
        raise
    except DECODE_ERRORS as exc:
        raise InputError(f"cannot read input {file.path}: {exc}") from exc
    except Exception as exc:  # pyarrow raises ArrowInvalid for a corrupt footer
        raise InputError(f"cannot read input {file.path}: {exc}") from exc


def parquet_file(file: InputFile | Chunk) -> pq.ParquetFile:
    """A Parquet input opened through its store (only its footer is read here)."""
    location = resolve(file.path, storage_options(file.storage))
    return pq.ParquetFile(location.path, filesystem=location.filesystem)


def _jsonl_keys(file: InputFile) -> list[str] | None:
    keys: dict[str, None] = {}
    parsed = 0
    with open_records(file.path, storage_options(file.storage)) as handle:
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
    return "\t" if ".tsv" in path.rsplit("/", 1)[-1] else ","


def position_words(file: InputFile) -> tuple[str, str]:
    """The words before and after a record's ``record`` position that say where it is.

    ``record`` is the line's byte offset in JSONL, the row (from 0) in Parquet, the data row
    (from 1, after the header) in CSV, and for ``.txt`` files the position (from 0) of the
    file among its source's ``.txt`` files: ``before + str(record) + after`` reads, e.g.,
    "the line at byte 120 of /data/b.jsonl" or "/data/c.txt, the .txt file at position 2 of
    source 'data'".
    """
    if file.format == "jsonl" and file.compressed:
        return "the line at byte ", f" (decompressed) of {file.path}"
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
        whole = Chunk(
            index, file.path, file.format, file.source, 0, WHOLE_FILE, storage=file.storage
        )
        if file.format == "jsonl" and file.compressed:  # no codec here can be split
            chunks.append(whole)
        elif file.format == "jsonl":
            for start in range(0, max(file.bytes, 1), JSONL_CHUNK_BYTES):
                end = min(start + JSONL_CHUNK_BYTES, file.bytes)
                chunks.append(
                    Chunk(index, file.path, "jsonl", file.source, start, end, storage=file.storage)
                )
        elif file.format == "parquet":
            groups = parquet_file(file).metadata.num_row_groups
            chunks.extend(
                Chunk(index, file.path, "parquet", file.source, g, g + 1, storage=file.storage)
                for g in range(groups)
            )
        elif file.format == "csv":
            chunks.append(whole)
        else:
            txt_groups.setdefault(file.source, []).append(index)
    for source, indices in txt_groups.items():
        for offset in range(0, len(indices), TXT_FILES_PER_CHUNK):
            group = indices[offset : offset + TXT_FILES_PER_CHUNK]
            paths = tuple(files[i].path for i in group)
            storage = files[group[0]].storage
            chunks.append(
                Chunk(
                    group[0], paths[0], "txt", source, offset, offset, paths, tuple(group), storage
                )
            )
    return chunks
