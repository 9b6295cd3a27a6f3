"""Parsing and validation of one input chunk into Arrow batches of RAW_SCHEMA: pure, no Spark.

Every record comes out as exactly one row: either valid (``reason`` null) or rejected
with a ``reason`` from REJECT_REASONS and a human ``detail``, so nothing is dropped.
`readers` reads a chunk's records in each input format, `validate` checks each one's
fields; this module turns them into rows and batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from batchcraft.dataset.arrays import is_vector_type
from batchcraft.pipeline.read.column_types import (
    KEPT_COLUMNS,
    carrier_type,
    kept_struct,
    to_carrier,
)
from batchcraft.pipeline.read.inputs import Chunk
from batchcraft.pipeline.read.readers import read_records, read_row_group, table_records
from batchcraft.pipeline.read.validate import CheckedVector, ColumnMapping, Reject, validate_record
from batchcraft.pipeline.read.vector_checks import vector_problems

REJECT_REASONS = (
    "missing_text",
    "invalid_utf8",
    "text_too_long",
    "malformed_record",
    "missing_id",
    "duplicate_id",
    "missing_pair",
    "bad_ref_loss",
    "embedding_dimension",  # set after parsing, by stage.reject_wrong_dimension
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
        ("ref_loss", pa.float32()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("raw", pa.string()),
        ("dedup_key", pa.string()),
    ]
)
BATCH_ROWS = 4096
RAW_PREVIEW_CHARS = 2000


def raw_schema(mapping: ColumnMapping) -> pa.Schema:
    """The schema of `parse_chunk`'s batches: RAW_SCHEMA, and the kept columns if any."""
    if not mapping.kept:
        return RAW_SCHEMA
    return RAW_SCHEMA.append(pa.field(KEPT_COLUMNS, kept_struct(mapping.kept)))


def parse_chunk(chunk: Chunk, mapping: ColumnMapping) -> Iterator[pa.RecordBatch]:
    """Parse and validate one chunk, yielding `raw_schema` batches of at most BATCH_ROWS rows."""
    if chunk.format == "parquet":
        table, first_row = read_row_group(chunk)
        for start in range(0, table.num_rows, BATCH_ROWS):
            part = table.slice(start, BATCH_ROWS)
            yield _parquet_batch(chunk, part, first_row + start, mapping)
        return
    rows: list[dict[str, Any]] = []
    fields: list[dict[str, Any] | None] = []  # each valid record's decoded fields
    for record, payload, raw in read_records(chunk):
        rows.append(_to_row(chunk, record, payload, raw, mapping))
        fields.append(None if rows[-1].get("reason") else payload)
        if len(rows) >= BATCH_ROWS:
            yield _decoded_batch(rows, fields, mapping, chunk)
            rows, fields = [], []
    if rows:
        yield _decoded_batch(rows, fields, mapping, chunk)


def _decoded_batch(
    rows: list[dict[str, Any]],
    fields: list[dict[str, Any] | None],
    mapping: ColumnMapping,
    chunk: Chunk,
) -> pa.RecordBatch:
    """The batch of ``rows`` and the kept columns of their records' decoded ``fields``
    (None for a rejected record: its kept columns are null)."""
    batch = pa.RecordBatch.from_pylist(rows, schema=RAW_SCHEMA)
    if not mapping.kept:
        return batch
    columns = []
    for kept in mapping.kept:
        values = [None if record is None else record.get(kept.column) for record in fields]
        try:
            columns.append(to_carrier(pa.array(values, type=kept.type), kept.type))
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as error:
            raise ValueError(f"column {kept.column!r} of {chunk.path}: {error}") from error
    return _append_kept(batch, columns, mapping)


def _append_kept(
    batch: pa.RecordBatch, columns: list[pa.Array], mapping: ColumnMapping
) -> pa.RecordBatch:
    """``batch`` with the kept ``columns`` (carrier types) as its KEPT_COLUMNS struct."""
    fields = list(kept_struct(mapping.kept))
    return batch.append_column(KEPT_COLUMNS, pa.StructArray.from_arrays(columns, fields=fields))


def _parquet_batch(
    chunk: Chunk, table: pa.Table, first_row: int, mapping: ColumnMapping
) -> pa.RecordBatch:
    """A Parquet slice's rows: the columns the job reads become Python values, while
    vectors and kept columns stay Arrow arrays (never Python objects, and a binary
    column is never taken for text)."""
    read = [name for name in _read_names(mapping) if name in table.column_names]
    records = table_records(table.select(read), first_row)
    problems: list[str | None] | None = None
    if mapping.embedding:
        vectors = table.column(mapping.embedding).combine_chunks()
        if not is_vector_type(vectors.type):
            raise ValueError(
                f"embedding column {mapping.embedding!r} of {chunk.path} is {vectors.type}, "
                "not a list of numbers"
            )
        problems = vector_problems(vectors)
    rows = []
    for position, (record, payload, raw) in enumerate(records):
        if problems is not None and isinstance(payload, dict):
            payload[mapping.embedding] = CheckedVector(problems[position])
        rows.append(_to_row(chunk, record, payload, raw, mapping))
    batch = pa.RecordBatch.from_pylist(rows, schema=RAW_SCHEMA)
    if mapping.embedding:
        valid = pc.is_null(batch.column("reason"))
        typed = vectors.cast(pa.list_(pa.float32()), safe=False)  # as `vector_problems` saw them
        given = pc.if_else(valid, typed, pa.nulls(len(typed), typed.type))
        batch = batch.set_column(
            RAW_SCHEMA.get_field_index("given_embedding"), "given_embedding", given
        )
    return _with_kept_arrays(batch, table, mapping)


def _read_names(mapping: ColumnMapping) -> list[str]:
    """The input columns validation reads as Python values (not vectors or kept columns)."""
    names = (mapping.text, mapping.id, mapping.pair, mapping.concepts, mapping.ref_loss)
    return list(dict.fromkeys(name for name in names if name))


def _with_kept_arrays(
    batch: pa.RecordBatch, table: pa.Table, mapping: ColumnMapping
) -> pa.RecordBatch:
    """``batch`` and the kept columns of the Parquet ``table`` it was parsed from (null
    where this file lacks one)."""
    if not mapping.kept:
        return batch
    columns = []
    for kept in mapping.kept:
        if kept.column in table.column_names:
            columns.append(to_carrier(table.column(kept.column).combine_chunks(), kept.type))
        else:
            columns.append(pa.nulls(table.num_rows, carrier_type(kept.type)))
    return _append_kept(batch, columns, mapping)


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
    """The RAW_SCHEMA row of one record: its validated fields, or its reject and a preview."""
    row: dict[str, Any] = {
        "file_index": chunk.file_index_of(record),
        "record": record,
        "source": chunk.source,
    }
    try:
        if isinstance(payload, Reject):
            raise payload
        row.update(validate_record(payload, mapping, chunk, record))
    except Reject as rejected:
        row.update(reason=rejected.reason, detail=rejected.detail, raw=_preview(raw))
        if isinstance(payload, dict) and mapping.id and payload.get(mapping.id) is not None:
            row["id"] = str(payload[mapping.id])
    return row
