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
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("raw", pa.string()),
        ("dedup_key", pa.string()),
    ]
)
BATCH_ROWS = 4096
RAW_PREVIEW_CHARS = 2000


def parse_chunk(chunk: Chunk, mapping: ColumnMapping) -> Iterator[pa.RecordBatch]:
    """Parse and validate one chunk, yielding RAW_SCHEMA batches of at most BATCH_ROWS rows."""
    if chunk.format == "parquet" and mapping.embedding:
        yield from _parse_parquet_with_vectors(chunk, mapping)
        return
    rows: list[dict[str, Any]] = []
    for record, payload, raw in read_records(chunk):
        rows.append(_to_row(chunk, record, payload, raw, mapping))
        if len(rows) >= BATCH_ROWS:
            yield pa.RecordBatch.from_pylist(rows, schema=RAW_SCHEMA)
            rows = []
    if rows:
        yield pa.RecordBatch.from_pylist(rows, schema=RAW_SCHEMA)


def _parse_parquet_with_vectors(chunk: Chunk, mapping: ColumnMapping) -> Iterator[pa.RecordBatch]:
    """Parquet with precomputed embeddings: vectors stay Arrow arrays, never Python floats."""
    assert mapping.embedding is not None
    table, first_row = read_row_group(chunk)
    vectors = table.column(mapping.embedding).combine_chunks()
    if not is_vector_type(vectors.type):
        raise ValueError(
            f"embedding column {mapping.embedding!r} of {chunk.path} is {vectors.type}, "
            "not a list of numbers"
        )
    problems = vector_problems(vectors)
    rows = []
    records = table_records(table.drop_columns([mapping.embedding]), first_row)
    for (record, payload, raw), problem in zip(records, problems, strict=True):
        if isinstance(payload, dict):
            payload[mapping.embedding] = CheckedVector(problem)
        rows.append(_to_row(chunk, record, payload, raw, mapping))
    batch = pa.RecordBatch.from_pylist(rows, schema=RAW_SCHEMA)
    valid = pc.is_null(batch.column("reason"))
    typed = vectors.cast(pa.list_(pa.float32()), safe=False)  # as `vector_problems` saw them
    given = pc.if_else(valid, typed, pa.nulls(len(typed), typed.type))
    yield batch.set_column(RAW_SCHEMA.get_field_index("given_embedding"), "given_embedding", given)


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
