"""The rows of a curated dataset: schema version, column names and types.

This module and its siblings in `batchcraft.dataset` are the one place that
states the curated-dataset contract (DESIGN.md, "The curated dataset
contract"). The pipeline writes through them; the batcher, the report and the
service read through them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import pyarrow as pa

from batchcraft.dataset.arrays import to_matrix
from batchcraft.errors import ConfigError, OutputError

SCHEMA_VERSION = 1
"""The version written into every new manifest."""
SUPPORTED_SCHEMA_VERSIONS: tuple[int, ...] = (1,)
"""Versions a reader accepts."""

EmbeddingDtype = Literal["float32", "float16"]
EMBEDDING_DTYPES: tuple[str, ...] = ("float32", "float16")

ID = "id"
TEXT = "text"
PAIR_TEXT = "pair_text"
SOURCE = "source"
EMBEDDING = "embedding"
PAIR_EMBEDDING = "pair_embedding"
CLUSTER = "cluster"
CENTROID_SIM = "centroid_sim"
DUP_OF = "dup_of"
DUP_KIND = "dup_kind"
MAX_SIM = "max_sim"
DUP_JACCARD = "dup_jaccard"
KEEP = "keep"
CONCEPTS = "concepts"
LABEL = "label"
REF_LOSS = "ref_loss"

CONTRACT_COLUMNS: tuple[str, ...] = (
    ID,
    TEXT,
    PAIR_TEXT,
    SOURCE,
    EMBEDDING,
    PAIR_EMBEDDING,
    CLUSTER,
    CENTROID_SIM,
    DUP_OF,
    DUP_KIND,
    LABEL,
    MAX_SIM,
    DUP_JACCARD,
    KEEP,
    CONCEPTS,
    REF_LOSS,
)
"""Every column the contract names, in the order a shard holds them. The user's own
columns (kept under their input names) may take none of these names."""

REQUIRED_COLUMNS: tuple[str, ...] = (ID,)
"""Columns every shard must have (a reader refuses a shard without them)."""

DUP_KINDS: tuple[str, ...] = ("exact", "near", "minhash", "semantic")
"""Values of ``dup_kind`` (null for a kept row)."""

REJECTS_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("file", pa.string()),
        ("record", pa.int64()),
        ("id", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("raw", pa.string()),
    ]
)
"""Schema of ``rejects/*.parquet``: one row per rejected input record, with its reason."""


def similarity_threshold(eps: float) -> float:
    """The cosine at or above which two rows are semantic duplicates: ``1 - eps``."""
    return 1.0 - eps


def row_schema(
    dimension: int,
    dtype: EmbeddingDtype | str = "float32",
    *,
    label_type: pa.DataType | None = None,
    user_columns: Sequence[pa.Field] = (),
) -> pa.Schema:
    """Arrow schema of the rows of a curated dataset with ``dimension``-wide embeddings.

    Args:
        dimension: Width of ``embedding`` and ``pair_embedding``.
        dtype: Stored precision of the vectors.
        label_type: Type of ``label`` when the dataset has one (a mapped input column);
            None leaves the column out.
        user_columns: The input's other columns, kept under their own names and types
            after the contract's ``dup_kind``/``label`` (DESIGN.md's order).

    Raises:
        ConfigError: an unknown ``dtype``, or a user column named like a contract column.
    """
    if dtype not in EMBEDDING_DTYPES:
        raise ConfigError(f"embedding dtype={dtype!r}; valid: {list(EMBEDDING_DTYPES)}")
    clashing = sorted({field.name for field in user_columns} & set(CONTRACT_COLUMNS))
    if clashing:
        raise ConfigError(f"user columns {clashing} are named like contract columns")
    value_type = pa.float16() if dtype == "float16" else pa.float32()
    vector = pa.list_(value_type, dimension)
    label = [pa.field(LABEL, label_type)] if label_type is not None else []
    return pa.schema(
        [
            (ID, pa.string()),
            (TEXT, pa.string()),
            (PAIR_TEXT, pa.string()),
            (SOURCE, pa.string()),
            (EMBEDDING, vector),
            (PAIR_EMBEDDING, vector),
            (CLUSTER, pa.int32()),
            (CENTROID_SIM, pa.float32()),
            (DUP_OF, pa.string()),
            (DUP_KIND, pa.string()),
            *label,
            *user_columns,
            (MAX_SIM, pa.float32()),
            (DUP_JACCARD, pa.float64()),  # exact: comparable with the threshold
            (KEEP, pa.bool_()),
            (CONCEPTS, pa.list_(pa.string())),
            (REF_LOSS, pa.float32()),
        ]
    )


def to_contract(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` (e.g. from Spark: variable-size lists, extra columns) cast to ``schema``.

    Columns the batch lacks become nulls; a vector column must be all null or
    null-free with vectors of the schema's width; any other column is cast to its
    schema type (a user column carried in another type, e.g. a timestamp as its
    integer count, comes back to its own).

    Raises:
        OutputError: a vector column is partly null or of another width.
    """
    columns = []
    for field in schema:
        if field.name not in batch.schema.names:
            columns.append(pa.nulls(batch.num_rows, field.type))
        elif pa.types.is_fixed_size_list(field.type) and field.name in _VECTOR_COLUMNS:
            columns.append(_fixed_size(batch.column(field.name), field.type))
        elif pa.types.is_null(field.type):  # Arrow casts nothing to null
            columns.append(pa.nulls(batch.num_rows))
        else:
            columns.append(batch.column(field.name).cast(field.type))
    return pa.RecordBatch.from_arrays(columns, schema=schema)


_VECTOR_COLUMNS = frozenset({EMBEDDING, PAIR_EMBEDDING})


def _fixed_size(column: pa.Array, target: pa.FixedSizeListType) -> pa.Array:
    if column.null_count == len(column):
        return pa.nulls(len(column), target)
    if column.null_count:
        raise OutputError(f"vector column has {column.null_count} nulls among {len(column)} rows")
    try:
        matrix = to_matrix(column)
    except ValueError as exc:
        raise OutputError(f"vectors are not all of dimension {target.list_size}") from exc
    if matrix.shape[1] != target.list_size:
        raise OutputError(f"vectors are not all of dimension {target.list_size}")
    typed = pa.array(matrix.reshape(-1).astype(target.value_type.to_pandas_dtype(), copy=False))
    return pa.FixedSizeListArray.from_arrays(typed, target.list_size)
