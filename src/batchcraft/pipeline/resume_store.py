"""Finished stages kept under an object-store prefix: ``curate --work-dir s3://…``.

An object store has no rename, so a stage's output cannot be written aside and moved into
place as on a local disk (`resume.StageStore`). Here the tasks write its Parquet files,
one per partition, straight from the executors (nothing goes through the driver) under a
prefix of their own, ``<stage>-<key>.data-<run>/``, and the driver then *publishes* it by
writing ``<stage>-<key>.json`` last: one PUT, which a reader sees whole or not at all,
naming the data prefix, its files and the frame's schema. A run killed while writing
leaves a data prefix that no record names: it is never read, and the next run removes it
once its owner is gone (the owner file and the rules of `write.files.owner_alive`, as for
a killed run's staging prefix).

Like a local work directory, a prefix keeps the ``keep`` outputs of each stage used last:
a record holds the time it was last used (written when published, rewritten when read back:
an object's own modification time has one-second resolution on some stores), and older
outputs are removed, their record first, so no later run finds a half-removed output.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pyspark import TaskContext
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from batchcraft.pipeline.write.files import OWNER_FILE, write_parquet
from batchcraft.pipeline.write.publish import prefix_owner_alive
from batchcraft.storage import Location, read_bytes, remove_tree, write_bytes
from batchcraft.storage.locations import call_store

_DATA = ".data-"
"""Between a stage's key and its run's token in the name of a data prefix."""


class PrefixStageStore:
    """Finished stage outputs under one prefix of an object store (module docstring)."""

    def __init__(self, root: Location, keep: int) -> None:
        self.root = root
        self.keep = keep

    def _record(self, stage: str, key: str) -> Location:
        return self.root.join(f"{stage}-{key}.json")

    def load(self, spark: SparkSession, stage: str, key: str) -> DataFrame | None:
        """The kept output of ``stage`` under ``key``, or None when none was published."""
        self.remove_partials()
        try:
            record = json.loads(read_bytes(self._record(stage, key)))
        except FileNotFoundError:
            return None
        write_bytes(self._record(stage, key), _with_use_time(record))  # for `prune`
        schema = T.StructType.fromJson(record["schema"])
        data = self.root.join(record["data"])
        names = record["files"]
        if not names:
            return spark.createDataFrame([], schema)
        plan = spark.createDataFrame([(name,) for name in names], "name string")

        def read(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            for batch in batches:
                for name in batch.column("name").to_pylist():
                    with data.filesystem.open_input_file(data.join(name).path) as handle:
                        yield from pq.ParquetFile(handle).iter_batches()

        return plan.repartition(len(names)).mapInArrow(read, schema)

    def save(self, frame: DataFrame, stage: str, key: str) -> None:
        """Keep ``frame`` as the output of ``stage`` under ``key``: its files first, under
        a data prefix of this run, then the record that names them."""
        self.remove_partials()
        token = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        data = self.root.join(f"{stage}-{key}{_DATA}{token}")
        write_bytes(data.join(OWNER_FILE), f"{socket.gethostname()} {os.getpid()}\n".encode())

        def write(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            first = next(batches, None)
            if first is None:
                return
            context = TaskContext.get()
            assert context is not None, "runs inside a Spark task"
            name = f"part-{context.partitionId():05d}.parquet"
            write_parquet(itertools.chain([first], batches), data.join(name), first.schema)
            yield pa.RecordBatch.from_pydict({"name": [name]})

        names = sorted(row["name"] for row in frame.mapInArrow(write, "name string").collect())
        record = self._record(stage, key)
        if record.info().type == pafs.FileType.File:  # another run kept the same output
            remove_tree(data)
            return
        content = {"data": data.name, "files": names, "schema": frame.schema.jsonValue()}
        write_bytes(record, _with_use_time(content))
        self.prune(stage)

    def prune(self, stage: str) -> None:
        """Remove all but the ``keep`` outputs of ``stage`` used last: each record, then
        the data prefix it names."""
        used = []
        for name in self._names():
            if name.startswith(f"{stage}-") and name.endswith(".json"):
                record = self._read_record(name)
                if record is not None:
                    used.append((float(record.get("used", 0.0)), name, record["data"]))
        used.sort(reverse=True)
        for _, name, data in used[self.keep :]:
            old = self.root.join(name)
            with contextlib.suppress(FileNotFoundError):  # another run removed it first
                call_store(old.url, old.filesystem.delete_file, old.path)
            remove_tree(self.root.join(data))

    def _names(self) -> list[str]:
        selector = pafs.FileSelector(self.root.path, allow_not_found=True)
        infos = call_store(self.root.url, self.root.filesystem.get_file_info, selector)
        return [info.base_name for info in infos]

    def _read_record(self, name: str) -> dict[str, Any] | None:
        try:
            record = json.loads(read_bytes(self.root.join(name)))
        except (ValueError, FileNotFoundError):
            return None
        return record if isinstance(record, dict) and "data" in record else None

    def remove_partials(self) -> None:
        """Remove the data prefixes of killed runs (no record names them, and their owner
        is gone); a live run's are kept."""
        names = self._names()
        records = [self._read_record(name) for name in names if name.endswith(".json")]
        named = {record["data"] for record in records if record is not None}
        for name in names:
            if _DATA in name and name not in named:
                prefix = self.root.join(name)
                if not prefix_owner_alive(prefix):
                    remove_tree(prefix)


def _with_use_time(record: dict[str, Any]) -> bytes:
    return json.dumps({**record, "used": time.time()}).encode()
