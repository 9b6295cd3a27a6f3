"""Parsing and validation of one input chunk into an Arrow batch: pure, no Spark.

Every record comes out as exactly one row: either valid (``reason`` null) or rejected
with a ``reason`` from REJECT_REASONS and a human ``detail``, so nothing is dropped.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from batchcraft.pipeline.inputs import Chunk
from batchcraft.pipeline.normalize import dedup_key, derived_id, normalize_text
from batchcraft.pipeline.vectors import is_vector_type, vector_problem, vector_problems

REJECT_REASONS = (
    "missing_text",
    "invalid_utf8",
    "text_too_long",
    "malformed_record",
    "missing_id",
    "duplicate_id",
    "missing_pair",
    "embedding_dimension",  # set after parsing, by stages.reject_wrong_dimension
)
RAW_SCHEMA = pa.schema(
    [
        ("file_index", pa.int32()),
        ("record", pa.int64()),
        ("source", pa.string()),
        ("id", pa.string()),
        ("text", pa.string()),
        ("pair_text", pa.string()),
        ("given_concepts", pa.list_(pa.string())),
        ("given_embedding", pa.list_(pa.float32())),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("raw", pa.string()),
        ("dedup_key", pa.string()),
    ]
)
BATCH_ROWS = 4096
RAW_PREVIEW_CHARS = 2000
_JSON_TYPE_NAMES = {
    dict: "object",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


@dataclass(frozen=True)
class ColumnMapping:
    """Which input columns feed which row fields, and the validation limits."""

    text: str = "text"
    id: str | None = None
    pair: str | None = None
    concepts: str | None = None
    embedding: str | None = None
    max_text_bytes: int = 100_000


@dataclass(frozen=True)
class _CheckedVector:
    """Stands for a Parquet vector in a record: checked (and kept) as an Arrow column."""

    problem: str | None


class _Reject(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def parse_chunk(chunk: Chunk, mapping: ColumnMapping) -> Iterator[pa.RecordBatch]:
    """Parse and validate one chunk, yielding RAW_SCHEMA batches of at most BATCH_ROWS rows."""
    if chunk.format == "parquet" and mapping.embedding:
        yield from _parse_parquet_with_vectors(chunk, mapping)
        return
    rows: list[dict[str, Any]] = []
    for record, payload, raw in _records(chunk):
        rows.append(_to_row(chunk, record, payload, raw, mapping))
        if len(rows) >= BATCH_ROWS:
            yield pa.RecordBatch.from_pylist(rows, schema=RAW_SCHEMA)
            rows = []
    if rows:
        yield pa.RecordBatch.from_pylist(rows, schema=RAW_SCHEMA)


def _records(chunk: Chunk) -> Iterator[tuple[int, Any, Any]]:
    """Yield (record number, payload or _Reject, the raw record) for each record of a chunk."""
    if chunk.format == "jsonl":
        yield from _jsonl_records(chunk)
    elif chunk.format == "parquet":
        yield from _parquet_records(chunk)
    elif chunk.format == "csv":
        yield from _csv_records(chunk)
    else:
        yield from _txt_records(chunk)


def _jsonl_records(chunk: Chunk) -> Iterator[tuple[int, Any, Any]]:
    with open(chunk.path, "rb") as handle:
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
        return _Reject("invalid_utf8", f"line is not valid UTF-8 at byte {exc.start}")
    try:
        value = json.loads(text)
    except ValueError as exc:
        return _Reject("malformed_record", f"invalid JSON: {exc}")
    if not isinstance(value, dict):
        return _Reject("malformed_record", f"a JSON {type(value).__name__} is not a record")
    return value


def _parquet_records(chunk: Chunk) -> Iterator[tuple[int, Any, Any]]:
    table, first_row = _read_row_group(chunk)
    yield from _table_records(table, first_row)


def _read_row_group(chunk: Chunk) -> tuple[pa.Table, int]:
    parquet = pq.ParquetFile(chunk.path)
    first_row = sum(parquet.metadata.row_group(g).num_rows for g in range(chunk.start))
    return parquet.read_row_group(chunk.start), first_row


def _table_records(table: pa.Table, first_row: int) -> Iterator[tuple[int, Any, Any]]:
    for index, name in enumerate(table.column_names):  # strings as bytes: bad UTF-8 is per row
        column = table.column(name)
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            table = table.set_column(index, name, column.cast(pa.binary()))
    for offset, values in enumerate(table.to_pylist()):
        yield first_row + offset, _decode_values(values), values


def _parse_parquet_with_vectors(chunk: Chunk, mapping: ColumnMapping) -> Iterator[pa.RecordBatch]:
    """Parquet with precomputed embeddings: vectors stay Arrow arrays, never Python floats."""
    assert mapping.embedding is not None
    table, first_row = _read_row_group(chunk)
    vectors = table.column(mapping.embedding).combine_chunks()
    if not is_vector_type(vectors.type):
        raise ValueError(
            f"embedding column {mapping.embedding!r} of {chunk.path} is {vectors.type}, "
            "not a list of numbers"
        )
    problems = vector_problems(vectors)
    rows = []
    records = _table_records(table.drop_columns([mapping.embedding]), first_row)
    for (record, payload, raw), problem in zip(records, problems, strict=True):
        if isinstance(payload, dict):
            payload[mapping.embedding] = _CheckedVector(problem)
        rows.append(_to_row(chunk, record, payload, raw, mapping))
    batch = pa.RecordBatch.from_pylist(rows, schema=RAW_SCHEMA)
    valid = pc.is_null(batch.column("reason"))
    typed = vectors.cast(pa.list_(pa.float32()), safe=False)  # as `vector_problems` saw them
    given = pc.if_else(valid, typed, pa.nulls(len(typed), typed.type))
    yield batch.set_column(RAW_SCHEMA.get_field_index("given_embedding"), "given_embedding", given)


def _csv_records(chunk: Chunk) -> Iterator[tuple[int, Any, Any]]:
    with open(chunk.path, encoding="utf-8", errors="surrogateescape", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t" if chunk.path.endswith(".tsv") else ",")
        header = next(reader, None)
        if header is None:
            return
        for number, fields in enumerate(reader, start=1):
            if not fields:
                continue
            if len(fields) != len(header):
                yield (
                    number,
                    _Reject(
                        "malformed_record",
                        f"{len(fields)} fields where the header has {len(header)}",
                    ),
                    fields,
                )
                continue
            payload: Any = dict(zip(header, fields, strict=True))
            if any(_has_surrogates(value) for value in fields):
                payload = _Reject("invalid_utf8", "a field is not valid UTF-8")
            yield number, payload, fields


def _txt_records(chunk: Chunk) -> Iterator[tuple[int, Any, Any]]:
    for offset, path in enumerate(chunk.paths):
        with open(path, "rb") as handle:
            content = handle.read()
        try:
            payload: Any = {"text": content.decode("utf-8"), "id": os.path.basename(path)}
        except UnicodeDecodeError as exc:
            payload = _Reject("invalid_utf8", f"{path} is not valid UTF-8 at byte {exc.start}")
        yield chunk.start + offset, payload, content


def _decode_values(values: dict[str, Any]) -> Any:
    decoded: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                return _Reject("invalid_utf8", f"column {key!r} is not valid UTF-8")
        decoded[key] = value
    return decoded


def _has_surrogates(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _preview(raw: Any) -> str:
    """A bounded, lossy text preview of a rejected record (computed only for rejects)."""
    if isinstance(raw, list):  # CSV fields
        raw = ",".join(raw).encode("utf-8", "surrogateescape")
    elif not isinstance(raw, bytes):  # a Parquet row
        raw = repr(raw).encode("utf-8", "backslashreplace")
    return raw[: RAW_PREVIEW_CHARS * 4].decode("utf-8", "backslashreplace")[:RAW_PREVIEW_CHARS]


def _to_row(
    chunk: Chunk, record: int, payload: Any, raw: Any, mapping: ColumnMapping
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "file_index": chunk.file_index_of(record),
        "record": record,
        "source": chunk.source,
    }
    try:
        if isinstance(payload, _Reject):
            raise payload
        row.update(_validate(payload, mapping, chunk, record))
    except _Reject as rejected:
        row.update(reason=rejected.reason, detail=rejected.detail, raw=_preview(raw))
        if isinstance(payload, dict) and mapping.id and payload.get(mapping.id) is not None:
            row["id"] = str(payload[mapping.id])
    return row


def _validate(
    record: dict[str, Any], mapping: ColumnMapping, chunk: Chunk, number: int
) -> dict[str, Any]:
    text = _text_field(record, mapping.text, "missing_text", mapping.max_text_bytes)
    pair = None
    if mapping.pair:
        pair = _text_field(record, mapping.pair, "missing_pair", mapping.max_text_bytes)
    if mapping.id:
        given = record.get(mapping.id)
        if given is None or str(given).strip() == "":
            raise _Reject("missing_id", f"id column {mapping.id!r} is missing or empty")
        row_id = str(given)
    else:
        row_id = derived_id(
            os.path.basename(chunk.path) if chunk.format != "txt" else str(record.get("id")),
            number,
            text,
        )
    return {
        "id": row_id,
        "text": text,
        "pair_text": pair,
        "dedup_key": dedup_key(text, pair),
        "given_concepts": _concepts_field(record, mapping.concepts),
        "given_embedding": _embedding_field(record, mapping.embedding, chunk.format == "csv"),
    }


def _text_field(record: dict[str, Any], column: str, missing_reason: str, max_bytes: int) -> str:
    value = record.get(column)
    if value is None:
        raise _Reject(missing_reason, f"column {column!r} is missing or null")
    if not isinstance(value, str):
        raise _Reject(
            "malformed_record", f"column {column!r} holds a {type(value).__name__}, not text"
        )
    if _has_surrogates(value):
        raise _Reject("invalid_utf8", f"column {column!r} is not valid UTF-8")
    size = len(value.encode("utf-8"))
    if size > max_bytes:
        raise _Reject(
            "text_too_long", f"column {column!r} has {size} bytes > max_text_bytes={max_bytes}"
        )
    normalized = normalize_text(value)
    if not normalized:
        raise _Reject(missing_reason, f"column {column!r} is empty")
    return normalized


def _concepts_field(record: dict[str, Any], column: str | None) -> list[str] | None:
    if not column:
        return None
    value = record.get(column)
    if value is None:
        return []
    if isinstance(value, str):
        return sorted({part.strip() for part in value.split(",") if part.strip()})
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return sorted({v.strip() for v in value if v.strip()})
    raise _Reject(
        "malformed_record", f"concept column {column!r} is neither a list of strings nor text"
    )


def _embedding_field(
    record: dict[str, Any], column: str | None, as_json_text: bool = False
) -> list[float] | None:
    """The record's precomputed vector; ``as_json_text`` for CSV, whose cells are text."""
    if not column:
        return None
    value: Any = record.get(column)
    if as_json_text:
        value = _json_vector(value, column)
    checked = isinstance(value, _CheckedVector)  # a Parquet vector, added from Arrow afterwards
    problem = value.problem if checked else vector_problem(value)
    if problem:
        raise _Reject("malformed_record", f"embedding column {column!r} {problem}")
    return None if checked else [float(v) for v in value]


def _json_vector(cell: str, column: str) -> list[Any]:
    """A CSV cell holding a vector as a JSON array (``"[0.1, -0.2]"``), decoded but not yet
    checked: its values then go through the same checks as a JSONL vector."""
    expected = "a JSON array of numbers like [0.1, -0.2]"
    if not cell.strip():
        raise _Reject("malformed_record", f"embedding column {column!r} is empty")
    try:
        value = json.loads(cell)
    except ValueError as exc:
        raise _Reject(
            "malformed_record", f"embedding column {column!r} is not {expected} ({exc})"
        ) from None
    if not isinstance(value, list):
        kind = _JSON_TYPE_NAMES.get(type(value), type(value).__name__)
        raise _Reject(
            "malformed_record", f"embedding column {column!r} holds a JSON {kind}, not {expected}"
        )
    return value
