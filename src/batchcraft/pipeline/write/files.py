"""Writing a curated dataset's files: Parquet shards, shard numbering, the atomic commit.

What the files hold is the contract of `batchcraft.dataset`."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

import pyarrow as pa
import pyarrow.parquet as pq

from batchcraft.dataset import layout
from batchcraft.errors import OutputError


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
            layout.data_dir(self.staging).mkdir(parents=True)
            layout.rejects_dir(self.staging).mkdir()
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


def number_shards(root: Path) -> list[Path]:
    """Rename the shards written by tasks under ``root/data`` to the contract's contiguous
    shard names (`layout.shard_name`)."""
    written = sorted(layout.data_dir(root).glob("task-*.parquet"))
    final = []
    for index, path in enumerate(written):
        target = root / layout.shard_name(index)
        os.replace(path, target)
        final.append(target)
    return final
