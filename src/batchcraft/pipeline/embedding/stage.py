"""The embed stage: unit-norm vectors for the unique rows, from the encoder or from the
precomputed vectors of the input. `embed_step` is this stage in the curation job.

Each task encodes with torch threads = its own cores and on the GPU Spark assigned to it
(`task_resources`); each Python worker loads the model once and keeps it for its tasks.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
from pyspark import TaskContext
from pyspark.sql import DataFrame, SparkSession

from batchcraft.dataset.arrays import to_list_array, to_matrix
from batchcraft.pipeline.config import CurateConfig
from batchcraft.pipeline.embedding.sentence_encoder import (
    EncoderSpec,
    cached_encoder,
    resolve_precision,
)
from batchcraft.pipeline.embedding.task_resources import (
    embed_partitions,
    spec_for_task,
    task_slots,
)
from batchcraft.pipeline.embedding.vectors import unit_norm
from batchcraft.pipeline.frames import PersistedFrames
from batchcraft.pipeline.spark_schema import VECTOR, extend_schema


def embed(df: DataFrame, spec: EncoderSpec, has_pairs: bool = False) -> DataFrame:
    """Add ``embedding`` (and ``pair_embedding`` with pairs): unit-norm sentence embeddings."""

    def encode(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        encoder = cached_encoder(_spec_for_this_task(spec))  # loaded once per Python worker
        for batch in batches:
            vectors = encoder.encode(batch.column("text").to_pylist())
            batch = batch.append_column("embedding", to_list_array(vectors))
            if has_pairs:
                pair_vectors = encoder.encode(batch.column("pair_text").to_pylist())
                batch = batch.append_column("pair_embedding", to_list_array(pair_vectors))
            yield batch

    vectors = {"embedding": VECTOR, **({"pair_embedding": VECTOR} if has_pairs else {})}
    return df.mapInArrow(encode, extend_schema(df, vectors))


def _spec_for_this_task(spec: EncoderSpec) -> EncoderSpec:
    """``spec`` for the running task: its cores and its GPU (GPU path untested: no GPU here)."""
    context = TaskContext.get()
    if context is None:  # not in a Spark task (e.g. called on the driver)
        return spec
    gpus = context.resources().get("gpu")
    return spec_for_task(spec, context.cpus(), gpus.addresses if gpus else [])


def normalize_embeddings(df: DataFrame, column: str = "given_embedding") -> DataFrame:
    """Add ``embedding``: the precomputed vectors of ``column`` scaled to unit norm."""

    def normalize(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            vectors = unit_norm(to_matrix(batch.column(column)))
            yield batch.append_column("embedding", to_list_array(vectors))

    return df.mapInArrow(normalize, extend_schema(df, {"embedding": VECTOR}))


def embed_step(
    spark: SparkSession,
    config: CurateConfig,
    unique_rows: DataFrame,
    num_rows: int,
    model_path: str | None,
    frames: PersistedFrames,
    counts: dict[str, int],
    kept: DataFrame | None = None,
) -> tuple[DataFrame, EncoderSpec | None]:
    """The ``num_rows`` unique rows with unit-norm ``embedding`` (cached), and the encoder
    used (None for precomputed vectors); ``kept``: this step's output of an earlier run,
    laid out again as the step lays out its own (`pipeline.resume`)."""
    task_cpus = int(spark.conf.get("spark.task.cpus", "1") or "1")
    slots = task_slots(spark.sparkContext.defaultParallelism, task_cpus)
    ordered = (
        (unique_rows if kept is None else kept)
        .repartition(embed_partitions(num_rows, slots), "id")
        .sortWithinPartitions("id")
    )
    spec = None
    if not config.embedding_column:
        assert model_path is not None
        spec = EncoderSpec(
            model_path, resolve_precision(config.precision), config.encode_batch_size
        )
    if kept is not None:
        embedded = ordered
    elif spec is None:
        embedded = normalize_embeddings(ordered).drop("given_embedding")
    else:
        embedded = embed(ordered, spec, config.pair_column is not None)
    embedded = frames.keep(embedded)
    counts["rows"] = embedded.count()
    return embedded, spec
