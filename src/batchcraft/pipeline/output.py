"""The curated-dataset contract on disk: schema, shard writing, manifest, atomic commit."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from batchcraft._files import jsonable
from batchcraft.errors import OutputError

SCHEMA_VERSION = 1
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


def dataset_schema(dimension: int, dtype: str = "float32") -> pa.Schema:
    """Arrow schema of the rows of a curated dataset (see DESIGN.md)."""
    value_type = pa.float16() if dtype == "float16" else pa.float32()
    vector = pa.list_(value_type, dimension)
    return pa.schema(
        [
            ("id", pa.string()),
            ("text", pa.string()),
            ("pair_text", pa.string()),
            ("source", pa.string()),
            ("embedding", vector),
            ("pair_embedding", vector),
            ("cluster", pa.int32()),
            ("centroid_sim", pa.float32()),
            ("dup_of", pa.string()),
            ("dup_kind", pa.string()),
            ("max_sim", pa.float32()),
            ("keep", pa.bool_()),
            ("concepts", pa.list_(pa.string())),
            ("ref_loss", pa.float32()),
        ]
    )


def to_contract(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """Convert a Spark-produced batch (variable-size lists, extra columns) to the contract schema."""
    columns = []
    for field in schema:
        if field.name not in batch.schema.names:
            columns.append(pa.nulls(batch.num_rows, field.type))
        elif pa.types.is_fixed_size_list(field.type):
            columns.append(_fixed_size(batch.column(field.name), field.type))
        else:
            columns.append(batch.column(field.name).cast(field.type))
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _fixed_size(column: pa.Array, target: pa.FixedSizeListType) -> pa.Array:
    if column.null_count == len(column):
        return pa.nulls(len(column), target)
    if column.null_count:
        raise OutputError(f"vector column has {column.null_count} nulls among {len(column)} rows")
    values = np.asarray(column.flatten().to_numpy(zero_copy_only=False), dtype=np.float32)
    if len(values) != len(column) * target.list_size:
        raise OutputError(f"vectors are not all of dimension {target.list_size}")
    typed = pa.array(values.astype(target.value_type.to_pandas_dtype(), copy=False))
    return pa.FixedSizeListArray.from_arrays(typed, target.list_size)


def write_parquet(batches: Iterable[pa.RecordBatch], path: Path, schema: pa.Schema) -> int:
    """Write batches to ``path`` atomically (temp name, then rename); returns the row count."""
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    rows = 0
    with pq.ParquetWriter(temporary, schema, compression="zstd") as writer:
        for batch in batches:
            writer.write_batch(batch)
            rows += batch.num_rows
    os.replace(temporary, path)
    return rows


class StagedOutput:
    """A dataset directory built under a staging name and renamed into place on success.

    A failed run removes the staging directory, so no half-written dataset is ever visible
    under the final name; an existing dataset is replaced only with ``overwrite``.
    """

    def __init__(self, final: str | Path, overwrite: bool = False) -> None:
        self.final = Path(final).absolute()
        if self.final.exists() and not overwrite:
            raise OutputError(f"output {self.final} already exists; pass --overwrite to replace it")
        if self.final.exists() and not self.final.is_dir():
            raise OutputError(f"output {self.final} exists and is not a directory")
        self.staging = self.final.with_name(f".{self.final.name}.staging-{uuid.uuid4().hex[:8]}")

    def __enter__(self) -> StagedOutput:
        try:
            self.final.parent.mkdir(parents=True, exist_ok=True)
            (self.staging / "data").mkdir(parents=True)
            (self.staging / "rejects").mkdir()
        except OSError as exc:
            raise OutputError(f"cannot create output next to {self.final}: {exc.strerror}") from exc
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if kind is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            return
        retired = self.final.with_name(f".{self.final.name}.old-{uuid.uuid4().hex[:8]}")
        if self.final.exists():
            os.replace(self.final, retired)
        os.replace(self.staging, self.final)
        shutil.rmtree(retired, ignore_errors=True)


def number_shards(data_dir: Path) -> list[Path]:
    """Rename the shards written by tasks to contiguous ``part-00000.parquet`` names."""
    written = sorted(data_dir.glob("task-*.parquet"))
    final = []
    for index, path in enumerate(written):
        target = data_dir / f"part-{index:05d}.parquet"
        os.replace(path, target)
        final.append(target)
    return final


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    """Write manifest.json (sorted keys, so two identical runs differ only in timings)."""
    path = directory / "manifest.json"
    path.write_text(
        json.dumps(jsonable(manifest), indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )


def iter_batches(table_or_batches: pa.Table | Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Batches of a table or an iterable of batches."""
    if isinstance(table_or_batches, pa.Table):
        yield from table_or_batches.to_batches()
    else:
        yield from table_or_batches
