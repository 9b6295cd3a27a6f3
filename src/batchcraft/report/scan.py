"""One streaming pass over a dataset's shards feeding several incremental accumulators.

Every statistic in the report is computed by an accumulator that sees the shards one
record batch at a time with only the columns it asks for, so memory stays bounded by
the batch size and the accumulators' own (small) state, whatever the dataset's size.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from batchcraft.errors import DatasetError

DEFAULT_BATCH_SIZE = 65_536


class Accumulator(Protocol):
    """Something that aggregates record batches incrementally."""

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns ``update`` reads (the scan projects the union of all of them)."""

    def update(self, batch: pa.RecordBatch, shard: int) -> None:
        """Fold one record batch of shard number ``shard`` into the running state."""


def iter_batches(
    files: Sequence[Path], columns: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE
) -> Iterator[tuple[int, pa.RecordBatch]]:
    """Yield ``(file index, batch)`` over ``files`` reading only ``columns``.

    Raises:
        DatasetError: A file is not Parquet or lacks one of ``columns``.
    """
    for index, path in enumerate(files):
        try:
            parquet = pq.ParquetFile(path)
        except (OSError, pa.ArrowException) as exc:
            raise DatasetError(f"{path} is not a readable Parquet file: {exc}") from exc
        names = set(parquet.schema_arrow.names)
        missing = [name for name in columns if name not in names]
        if missing:
            raise DatasetError(f"{path} lacks columns {missing} (it has {sorted(names)})")
        for batch in parquet.iter_batches(batch_size=batch_size, columns=list(columns)):
            yield index, batch


def scan(
    files: Sequence[Path],
    accumulators: Sequence[Accumulator],
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> None:
    """Stream ``files`` once, feeding every batch to every accumulator."""
    columns: list[str] = []
    for accumulator in accumulators:
        columns.extend(name for name in accumulator.columns if name not in columns)
    for shard, batch in iter_batches(files, columns, batch_size):
        for accumulator in accumulators:
            accumulator.update(batch, shard)


def file_columns(path: Path) -> list[str]:
    """The column names of a Parquet file (read from its footer only)."""
    return list(pq.ParquetFile(path).schema_arrow.names)
