"""Curation against existing curated datasets (``--against PREV``), in Spark: PREV's rows
read by the executors, and what each dedup stage compares the new rows with.

PREV is never rewritten and its rows are never removed: they take part in each stage as
rows that are always kept and come first, so a new row is removed only for resembling
one of PREV's kept rows (or a kept new row), and pairs of two PREV rows are never formed.

* ids: a new row whose id any PREV row has is rejected as ``duplicate_id``;
* exact: new rows with the dedup key of a PREV kept row point at it (`exact_keys`);
* MinHash: PREV's kept rows' band keys are read where PREV keeps them (`kept_keys`),
  else its kept texts are shingled in the same job (`minhash_previous`);
* semantic: the new rows take PREV's centroids (or k-means refits on the union with
  ``recluster``), and are compared with PREV's kept embeddings (`clustered`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import reduce
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from batchcraft.dataset import schema
from batchcraft.dataset.arrays import to_list_array, to_matrix
from batchcraft.pipeline.cluster.stage import KMeansFit, assign_clusters, configured_fit
from batchcraft.pipeline.config import CurateConfig
from batchcraft.pipeline.dedup.exact import dedup_key
from batchcraft.pipeline.dedup.semantic import PRIOR
from batchcraft.pipeline.frames import PersistedFrames
from batchcraft.pipeline.incremental.predecessors import Predecessor
from batchcraft.pipeline.minhash.kept_keys import (
    Previous,
    band_rows,
    has_kept_keys,
    missing_kept_keys,
    read_kept_keys,
)
from batchcraft.pipeline.minhash.settings import MinhashSettings
from batchcraft.pipeline.read.stage import parsed_preview
from batchcraft.pipeline.spark_schema import spark_type
from batchcraft.storage import StorageOptions, resolve

LOG = logging.getLogger("batchcraft.pipeline")
_VECTORS = (schema.EMBEDDING, schema.PAIR_EMBEDDING)
_READ = (schema.ID, schema.KEEP, schema.TEXT, schema.PAIR_TEXT, schema.CONCEPTS, schema.REF_LOSS)
_CONTRACT = schema.row_schema(1)
_ARROW = {
    **{name: _CONTRACT.field(name).type for name in _READ},
    **dict.fromkeys(_VECTORS, pa.list_(pa.float32())),  # as Spark holds them
    "origin": pa.string(),
}


def read_previous(
    spark: SparkSession, predecessors: list[Predecessor], config: CurateConfig
) -> DataFrame:
    """Every row of the predecessors (``origin``: the dataset's URL), one shard per task,
    each read by its executor from its store (nothing passes through the driver)."""
    options = config.storage_options
    columns = [
        *_READ,
        *_VECTORS,
    ]  # those a shard does not hold (no pairs, no ref_loss) come as nulls
    urls = [(shard, p.url) for p in predecessors for shard in p.shards]
    plan = spark.createDataFrame(urls, "shard string, origin string").repartition(len(urls))

    def read(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            shards, origins = batch.column("shard").to_pylist(), batch.column("origin").to_pylist()
            for shard, origin in zip(shards, origins, strict=True):
                location = resolve(shard, options)
                with location.filesystem.open_input_file(location.path) as file:
                    shard_file = pq.ParquetFile(file)
                    present = [c for c in columns if c in shard_file.schema_arrow.names]
                    for rows in shard_file.iter_batches(columns=present):
                        yield _as_spark_batch(rows, columns, origin)

    fields = [T.StructField(c, spark_type(_ARROW[c])) for c in (*columns, "origin")]
    return plan.mapInArrow(read, T.StructType(fields))


def _as_spark_batch(rows: pa.RecordBatch, columns: list[str], origin: str) -> pa.RecordBatch:
    """Stored vectors (fixed-size float32/float16 lists) as Spark's ``array<float>``; a
    nullable column the shard does not hold (``ref_loss``) as nulls."""
    arrays = {
        name: rows.column(name)
        if name in rows.schema.names
        else pa.nulls(rows.num_rows, _ARROW[name])
        for name in columns
    }
    for name in _VECTORS:
        if name in arrays:
            vectors = arrays[name]
            lists = to_list_array(np.nan_to_num(to_matrix(vectors)))
            if vectors.null_count:  # a row without a pair has no pair embedding
                missing = pc.is_null(vectors)
                lists = pa.ListArray.from_arrays(lists.offsets, lists.values, mask=missing)
            arrays[name] = lists
    arrays["origin"] = pa.array([origin] * rows.num_rows, pa.string())
    return pa.RecordBatch.from_pydict(arrays)


@dataclass
class Against:
    """The predecessors of a run and their rows, cached once for every stage.

    Attributes:
        predecessors: The datasets, as read before Spark started.
        rows: All their rows (``id``, ``origin``, ``keep``, texts, vectors, ``concepts``).
        known_ids: New rows rejected as ``duplicate_id`` of a PREV row (set by
            `reject_known_ids`).
        keys_read: The predecessors whose MinHash band keys were read, not computed
            (set by `minhash_previous`).
    """

    predecessors: list[Predecessor]
    rows: DataFrame
    known_ids: int = 0
    keys_read: list[str] = field(default_factory=list)

    @property
    def kept(self) -> DataFrame:
        """PREV's kept rows: the only ones a new row can be a duplicate of."""
        return self.rows.where(F.col("keep"))

    def ids(self) -> DataFrame:
        """The ids of PREV's kept rows (``id``)."""
        return self.kept.select("id")

    def texts(self) -> DataFrame:
        """``id``, ``text`` (and ``pair_text``) of PREV's kept rows, for MinHash."""
        return self.kept.select("id", "text", "pair_text")

    def minhash_previous(self, settings: MinhashSettings, options: StorageOptions) -> Previous:
        """PREV's kept rows as MinHash compares with them: their texts, and their band
        keys, read where a predecessor keeps them with these settings (`kept_keys`) and
        computed from the texts of the others (counted in `keys_read`)."""
        stored = [p for p in self.predecessors if _readable_keys(p, settings, options)]
        keys = read_kept_keys(
            self.rows.sparkSession, [(p.url, p.manifest) for p in stored], options
        )
        others = [p.url for p in self.predecessors if p not in stored]
        if others:
            texts = self.kept.where(F.col("origin").isin(others)).select("id", "text", "pair_text")
            keys = keys.unionByName(band_rows(texts, settings))
        self.keys_read = [p.url for p in stored]
        return Previous(self.texts(), keys)

    def reject_known_ids(self, raw: DataFrame, frames: PersistedFrames) -> DataFrame:
        """``raw`` with every valid record whose id a PREV row has rejected as
        ``duplicate_id`` (its detail names the PREV, its raw is a preview of its parsed
        fields); counted in `known_ids`."""
        known = self.rows.select("id", F.col("origin").alias("_known_in")).dropDuplicates(["id"])
        marked = raw.join(known, "id", "left").withColumn(
            "_hit", F.col("reason").isNull() & F.col("_known_in").isNotNull()
        )
        detail = F.concat(F.lit("id already in the --against dataset "), F.col("_known_in"))
        changes = {"detail": detail, "raw": parsed_preview(raw), "reason": F.lit("duplicate_id")}
        for name, value in changes.items():
            marked = marked.withColumn(name, F.when(F.col("_hit"), value).otherwise(F.col(name)))
        rejected = frames.keep(marked.select(*raw.columns))
        self.known_ids = marked.where(F.col("_hit")).count()
        return rejected

    def exact_keys(self) -> DataFrame:
        """``dedup_key`` and ``prev_id`` (the smallest id) of PREV's kept rows."""

        def keys(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            for batch in batches:
                texts = batch.column("text").to_pylist()
                pairs = batch.column("pair_text").to_pylist()
                yield pa.RecordBatch.from_pydict(
                    {
                        "dedup_key": [dedup_key(t, p) for t, p in zip(texts, pairs, strict=True)],
                        "prev_id": batch.column("id"),
                    }
                )

        found = self.texts().mapInArrow(keys, "dedup_key string, prev_id string")
        return found.groupBy("dedup_key").agg(F.min("prev_id").alias("prev_id"))

    def clustered(
        self,
        config: CurateConfig,
        embedded: DataFrame,
        num_rows: int,
        frames: PersistedFrames,
        counts: dict[str, int],
    ) -> tuple[KMeansFit, DataFrame, DataFrame]:
        """The centroids (PREV's, or refitted on the union with ``recluster``); the new
        and PREV's kept rows with their clusters, PREV's marked `PRIOR` (cached); and
        PREV's kept rows with the vectors, clusters and concepts a duplicate inherits."""
        previous = self.kept.drop("cluster", "centroid_sim")
        if config.recluster:
            union = embedded.select("id", "embedding").unionByName(
                previous.select("id", "embedding")
            )
            kmeans = configured_fit(config, union, num_rows + previous.count())
        else:
            kmeans = KMeansFit(self.predecessors[0].centroids, 0)
        assigned = frames.keep(assign_clusters(previous, kmeans.centroids))
        prior = assigned.select(
            "id", "embedding", "cluster", "centroid_sim", "second_cluster", "second_sim"
        ).withColumn(PRIOR, F.lit(True))
        new = assign_clusters(embedded, kmeans.centroids).withColumn(PRIOR, F.lit(False))
        clustered = frames.keep(new.unionByName(prior, allowMissingColumns=True))
        counts["clusters"] = len(kmeans.centroids)
        counts["rows"] = clustered.count()
        return kmeans, clustered, assigned


def _readable_keys(
    predecessor: Predecessor, settings: MinhashSettings, options: StorageOptions
) -> bool:
    """Whether ``predecessor`` keeps MinHash keys made with ``settings`` and holds every
    file of them (a warning names the missing ones: its texts are hashed instead)."""
    if not has_kept_keys(predecessor.manifest, settings):
        return False
    missing = missing_kept_keys(predecessor.url, predecessor.manifest, options)
    if missing:
        LOG.warning(
            "--against %s: its manifest names MinHash key files it does not hold (%s); "
            "hashing its kept texts instead",
            predecessor.url,
            ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else ""),
        )
    return not missing


def count_against(removed: list[DataFrame], previous_ids: DataFrame) -> dict[str, int]:
    """How many removed rows (``dup_of``, ``dup_kind`` of each frame of ``removed``: the
    cached duplicates of each stage, not the written rows, whose whole plan would run
    again) were removed as duplicates of a PREV row, per kind."""
    frames = [frame.select("dup_of", "dup_kind") for frame in removed]
    union = reduce(DataFrame.unionByName, frames)
    against = union.join(previous_ids.withColumnRenamed("id", "dup_of"), "dup_of", "left_semi")
    return {r["dup_kind"]: r["count"] for r in against.groupBy("dup_kind").count().collect()}


def incremental_record(
    against: Against, config: CurateConfig, counts: dict[str, Any]
) -> dict[str, Any]:
    """The manifest's ``incremental`` section: the predecessors, how clusters were chosen,
    and what was removed against them (``duplicate_id`` rejects included). Moves the write
    stage's ``against_previous`` out of ``counts``, and adds to each stage of
    ``counts["stages"]`` how many of its rows it removed against the predecessors."""
    removed = {"duplicate_id": against.known_ids, **counts.pop("against_previous")}
    kinds = {
        "validate": ("duplicate_id",),
        "exact_dedup": ("exact",),
        "minhash_dedup": ("minhash",),
        "semantic_dedup": ("near", "semantic"),
    }
    for stage in counts["stages"]:
        stage["against_previous"] = sum(removed.get(k, 0) for k in kinds.get(stage["stage"], ()))
    return {
        "predecessors": [p.record() for p in against.predecessors],
        "recluster": config.recluster,
        "centroids_from": "refit on the union" if config.recluster else against.predecessors[0].url,
        "minhash_keys_read_from": against.keys_read,
        "removed_against_previous": removed,
    }
