"""The curation job's persisted DataFrames, and the session settings it changes while it runs.

Kept apart from the job's wiring so that what is cached, where, and for how long is decided
in one place: every stage hands its result to `PersistedFrames.keep` and the job releases it
as soon as no later stage reads it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the job that creates PersistedFrames has imported pyspark already
    from pyspark.sql import DataFrame, SparkSession

ROWS_PER_SHUFFLE_PARTITION = 25_000
_SHUFFLE_PARTITIONS = "spark.sql.shuffle.partitions"


class PersistedFrames:
    """The job's persisted DataFrames, each released once no later stage reads it, and
    the session settings the job changes (restored by `close`).

    Frames holding texts or vectors go to disk only: one 1M-row frame with 384-d vectors
    is about 1.6 GB, and in a local-mode JVM the cache competes with the shuffles' and
    sorts' execution memory (a 1M-row run ran out of heap with two such frames cached in
    memory). Small frames (per-record outcomes, exact duplicates) stay in memory.
    """

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark
        self._kept: list[DataFrame] = []
        self._shuffle_partitions = spark.conf.get(_SHUFFLE_PARTITIONS)

    def keep(self, df: DataFrame, *, small: bool = False) -> DataFrame:
        from pyspark import StorageLevel

        level = StorageLevel.MEMORY_AND_DISK_DESER if small else StorageLevel.DISK_ONLY
        self._kept.append(df.persist(level))
        return self._kept[-1]

    def release(self, *frames: DataFrame) -> None:
        for df in frames:
            df.unpersist()
            self._kept = [kept for kept in self._kept if kept is not df]

    def scale_shuffles(self, num_rows: int) -> None:
        """About `ROWS_PER_SHUFFLE_PARTITION` rows per shuffle partition, never fewer
        partitions than the session's setting (adaptive execution merges small ones)."""
        configured = int(self._shuffle_partitions or "200")
        wanted = math.ceil(num_rows / ROWS_PER_SHUFFLE_PARTITION)
        if wanted > configured:
            self.spark.conf.set(_SHUFFLE_PARTITIONS, str(wanted))

    def close(self) -> None:
        self.release(*self._kept)
        if self._shuffle_partitions is not None:
            self.spark.conf.set(_SHUFFLE_PARTITIONS, self._shuffle_partitions)
