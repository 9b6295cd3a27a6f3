"""Reading the records of one chunk, per input format (JSONL, Parquet, CSV, ``.txt``): pure,
no Spark.

Each reader yields ``(record, payload, raw)``: the record's position (see
`inputs.position_words`), its fields as a dict (or a `Reject` when it cannot even be
decoded) and what was read, for the preview of a rejected record.
"""

from __future__ import annotations

import csv
import io
import json
import posixpath
from collections.abc import Iterator
from typing import Any, BinaryIO

import pyarrow as pa

from batchcraft.pipeline.read.discovery import storage_options
from batchcraft.pipeline.read.inputs import Chunk, parquet_file
from batchcraft.pipeline.read.validate import Reject, has_surrogates
from batchcraft.storage import DECODE_ERRORS, codec_of, damage, open_records

MAX_JSON_DEPTH = 64
"""A JSONL record nested deeper than this is a `malformed_record` (its kept columns would
become Arrow and Spark types as deep)."""


def read_records(chunk: Chunk) -> Iterator[tuple[int, Any, Any]]:
    """Yield (record number, payload or Reject, the raw record) for each record of a chunk.

    Raises:
        CorruptInput: a compressed file's stream is damaged or ends early (the records
            before the damage are not yielded as if they were the whole file: the task fails).
    """
    readers = {"jsonl": _jsonl_records, "parquet": _parquet_records, "csv": _csv_records}
    try:
        yield from readers.get(chunk.format, _txt_records)(chunk)
    except DECODE_ERRORS as error:
        if codec_of(chunk.path) is None or isinstance(error, FileNotFoundError):
            raise
        raise damage(chunk.path, error) from error


def _open(chunk: Chunk, path: str | None = None) -> BinaryIO:
    """A chunk's file (or ``path``, one of its ``.txt`` files), decompressed if need be."""
    return open_records(path or chunk.path, storage_options(chunk.storage))


def _jsonl_records(chunk: Chunk) -> Iterator[tuple[int, Any, Any]]:
    with _open(chunk) as handle:
        position = chunk.start
        if position > 0:  # the previous chunk owns the line that crosses our start
            handle.seek(position - 1)
            position += len(handle.readline()) - 1
        while position < chunk.end:
            line = handle.readline()
            if not line:
                break
            record, position = position, position + len(line)
            stripped = line.strip()
            if stripped:
                yield record, _decode_json(stripped), stripped


def _decode_json(line: bytes) -> Any:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Reject("invalid_utf8", f"line is not valid UTF-8 at byte {exc.start}")
    try:
        value = json.loads(text)
    except RecursionError:  # thousands of nested brackets: the decoder recurses per level
        return Reject("malformed_record", f"invalid JSON: nested deeper than {MAX_JSON_DEPTH}")
    except ValueError as exc:
        return Reject("malformed_record", f"invalid JSON: {exc}")
    if not isinstance(value, dict):
        return Reject("malformed_record", f"a JSON {type(value).__name__} is not a record")
    if json_depth(value) > MAX_JSON_DEPTH:  # kept columns become nested Arrow/Spark types
        return Reject("malformed_record", f"invalid JSON: nested deeper than {MAX_JSON_DEPTH}")
    return value


def json_depth(value: Any) -> int:
    """How deeply ``value`` nests lists and objects (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth + 1)
            if depth + 1 <= MAX_JSON_DEPTH:  # no need to look deeper than the limit
                children = item.values() if isinstance(item, dict) else item
                stack.extend((child, depth + 1) for child in children)
    return deepest


def _parquet_records(chunk: Chunk) -> Iterator[tuple[int, Any, Any]]:
    table, first_row = read_row_group(chunk)
    yield from table_records(table, first_row)


def read_row_group(chunk: Chunk) -> tuple[pa.Table, int]:
    """The chunk's Parquet row group, and the file's row number of its first row."""
    parquet = parquet_file(chunk)
    first_row = sum(parquet.metadata.row_group(g).num_rows for g in range(chunk.start))
    return parquet.read_row_group(chunk.start), first_row


def table_records(table: pa.Table, first_row: int) -> Iterator[tuple[int, Any, Any]]:
    """The records of a Parquet row group, numbered from ``first_row``."""
    for index, name in enumerate(table.column_names):  # strings as bytes: bad UTF-8 is per row
        column = table.column(name)
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            table = table.set_column(index, name, column.cast(pa.binary()))
    for offset, values in enumerate(table.to_pylist()):
        yield first_row + offset, _decode_values(values), values


def _csv_records(chunk: Chunk) -> Iterator[tuple[int, Any, Any]]:
    with _open(chunk) as stored:
        handle = io.TextIOWrapper(stored, encoding="utf-8", errors="surrogateescape", newline="")
        tab = ".tsv" in posixpath.basename(chunk.path)
        reader = csv.reader(handle, delimiter="\t" if tab else ",")
        header = next(reader, None)
        if header is None:
            return
        for number, fields in enumerate(reader, start=1):
            if not fields:
                continue
            if len(fields) != len(header):
                yield (
                    number,
                    Reject(
                        "malformed_record",
                        f"{len(fields)} fields where the header has {len(header)}",
                    ),
                    fields,
                )
                continue
            payload: Any = dict(zip(header, fields, strict=True))
            if any(has_surrogates(value) for value in fields):
                payload = Reject("invalid_utf8", "a field is not valid UTF-8")
            yield number, payload, fields


def _txt_records(chunk: Chunk) -> Iterator[tuple[int, Any, Any]]:
    for offset, path in enumerate(chunk.paths):
        with _open(chunk, path) as handle:
            content = handle.read()
        try:
            payload: Any = {"text": content.decode("utf-8"), "id": posixpath.basename(path)}
        except UnicodeDecodeError as exc:
            payload = Reject("invalid_utf8", f"{path} is not valid UTF-8 at byte {exc.start}")
        yield chunk.start + offset, payload, content


def _decode_values(values: dict[str, Any]) -> Any:
    decoded: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                return Reject("invalid_utf8", f"column {key!r} is not valid UTF-8")
        decoded[key] = value
    return decoded
