"""The cluster stage: spherical k-means fitted on a bounded sample in one executor task,
then every row assigned to its nearest and second-nearest centroids. In the curation job
this stage runs as `kept_stages.KeptStages.cluster` (whose fit a work directory keeps)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from batchcraft.dataset.arrays import to_list_array, to_matrix
from batchcraft.errors import BatchcraftError
from batchcraft.pipeline.cluster.kmeans import assign, train_centroids
from batchcraft.pipeline.config import (
    DEFAULT_KMEANS_ITERATIONS,
    DEFAULT_KMEANS_SAMPLE_SIZE,
    CurateConfig,
    default_num_clusters,
)
from batchcraft.pipeline.spark_schema import extend_schema


@dataclass(frozen=True)
class KMeansFit:
    """Centroids of a k-means fit and the number of rows it was trained on.

    Attributes:
        centroids: (num_clusters, d) float32 unit-norm centroids.
        sample_size: Rows in the hash-picked sample (about the requested size, not exactly).
    """

    centroids: np.ndarray
    sample_size: int


def fit_centroids(
    df: DataFrame,
    num_clusters: int,
    sample_size: int = DEFAULT_KMEANS_SAMPLE_SIZE,
    iterations: int = DEFAULT_KMEANS_ITERATIONS,
    seed: int = 0,
    num_rows: int | None = None,
) -> np.ndarray:
    """The centroids of `fit_kmeans` (same arguments)."""
    return fit_kmeans(df, num_clusters, sample_size, iterations, seed, num_rows).centroids


def fit_kmeans(
    df: DataFrame,
    num_clusters: int,
    sample_size: int = DEFAULT_KMEANS_SAMPLE_SIZE,
    iterations: int = DEFAULT_KMEANS_ITERATIONS,
    seed: int = 0,
    num_rows: int | None = None,
) -> KMeansFit:
    """Train spherical k-means on a bounded deterministic sample, in one executor task.

    Rows are picked by a hash of their id (a distributed filter, about ``sample_size`` of
    them) and shuffled into a single partition, where FAISS trains on them in id order
    (the same sample order on any cluster layout). Only the centroids and the sample's
    row count reach the driver, so its memory does not depend on the sample or the corpus.
    """
    total = df.count() if num_rows is None else num_rows
    buckets = 1 << 30
    cutoff = int(min(1.0, sample_size / max(total, 1)) * buckets)
    chosen = F.pmod(F.xxhash64(F.col("id"), F.lit(seed)), F.lit(buckets)) < F.lit(cutoff)
    sample = df.where(chosen).select("id", "embedding").repartition(1)
    train = _trainer(num_clusters, iterations, seed)
    found = sample.mapInArrow(train, "centroid array<float>, rows long").toArrow()
    if found.num_rows == 0:
        raise BatchcraftError(
            f"the k-means sample of about {sample_size} of {total} rows came out empty; "
            "raise kmeans_sample_size"
        )
    return KMeansFit(to_matrix(found.column("centroid")), int(found.column("rows")[0].as_py()))


def _trainer(
    num_clusters: int, iterations: int, seed: int
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The task that trains k-means on the whole sample (one partition): one row per
    centroid, each with the sample's row count."""

    def train(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        received = [batch for batch in batches if batch.num_rows]
        if not received:
            return
        table = pa.Table.from_batches(received)
        del received
        vectors = _sorted_by_id(table)
        del table  # the task holds one copy of the sample while FAISS trains
        centroids = train_centroids(
            vectors,
            num_clusters,
            iterations,
            seed,
            in_place=True,
            threads=len(os.sched_getaffinity(0)),
        )
        rows = pa.array(np.full(len(centroids), len(vectors), dtype=np.int64))
        yield pa.RecordBatch.from_arrays([to_list_array(centroids), rows], ["centroid", "rows"])

    return train


def _sorted_by_id(sample: pa.Table) -> np.ndarray:
    """The sample's vectors as one (n, d) float32 matrix in id order, each chunk scattered
    straight to its rows (no intermediate full-size copies)."""
    ids = np.asarray(sample.column("id").to_pylist(), dtype=object)
    rank = np.empty(len(ids), dtype=np.int64)
    rank[np.argsort(ids, kind="stable")] = np.arange(len(ids))
    chunks = sample.column("embedding").chunks
    width = next((len(c[0]) for c in chunks if len(c)), 0)
    vectors = np.empty((len(ids), width), dtype=np.float32)
    start = 0
    for chunk in chunks:
        vectors[rank[start : start + len(chunk)]] = to_matrix(chunk, width)
        start += len(chunk)
    return vectors


def assign_clusters(df: DataFrame, centroids: np.ndarray) -> DataFrame:
    """Add ``cluster``/``centroid_sim`` and the second-nearest ``second_cluster``/``second_sim``."""
    shared = df.sparkSession.sparkContext.broadcast(np.asarray(centroids, dtype=np.float32))

    def assign_batch(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            result = assign(to_matrix(batch.column("embedding")), shared.value)
            columns = {
                "cluster": result.cluster,
                "centroid_sim": result.centroid_sim,
                "second_cluster": result.second_cluster,
                "second_sim": result.second_sim,
            }
            for name, values in columns.items():
                batch = batch.append_column(name, pa.array(values))
            yield batch

    added = {
        "cluster": T.IntegerType(),
        "centroid_sim": T.FloatType(),
        "second_cluster": T.IntegerType(),
        "second_sim": T.FloatType(),
    }
    return df.mapInArrow(assign_batch, extend_schema(df, added))


def configured_fit(config: CurateConfig, df: DataFrame, num_rows: int) -> KMeansFit:
    """The k-means fit ``config`` asks for, on the ``num_rows`` rows of ``df``."""
    return fit_kmeans(
        df,
        config.num_clusters or default_num_clusters(num_rows),
        config.kmeans_sample_size,
        config.kmeans_iterations,
        config.seed,
        num_rows,
    )
