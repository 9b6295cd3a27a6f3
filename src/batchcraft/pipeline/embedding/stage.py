"""The embed stage: unit-norm vectors for the unique rows, from the encoder or from the
precomputed vectors of the input. `embed_step` is this stage in the curation job."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession

from batchcraft.dataset.arrays import to_list_array, to_matrix
from batchcraft.pipeline.config import CurateConfig
from batchcraft.pipeline.embedding.sentence_encoder import (
    EncoderSpec,
    cached_encoder,
    resolve_precision,
)
from batchcraft.pipeline.embedding.vectors import unit_norm
from batchcraft.pipeline.frames import PersistedFrames
from batchcraft.pipeline.spark_schema import VECTOR, extend_schema

ROWS_PER_EMBED_PARTITION = 2000


def embed(df: DataFrame, spec: EncoderSpec, has_pairs: bool = False) -> DataFrame:
    """Add ``embedding`` (and ``pair_embedding`` with pairs): unit-norm sentence embeddings."""

    def encode(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        encoder = cached_encoder(spec)  # loaded once per Python worker, reused across tasks
        for batch in batches:
            table = pa.Table.from_batches([batch])
            vectors = encoder.encode(table.column("text").to_pylist())
            table = table.append_column("embedding", to_list_array(vectors))
            if has_pairs:
                pair_vectors = encoder.encode(table.column("pair_text").to_pylist())
                table = table.append_column("pair_embedding", to_list_array(pair_vectors))
            yield from table.to_batches()

    vectors = {"embedding": VECTOR, **({"pair_embedding": VECTOR} if has_pairs else {})}
    return df.mapInArrow(encode, extend_schema(df, vectors))


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
    ordered = (
        (unique_rows if kept is None else kept)
        .repartition(max(2, math.ceil(num_rows / ROWS_PER_EMBED_PARTITION)), "id")
        .sortWithinPartitions("id")
    )
    spec = None
    if not config.embedding_column:
        assert model_path is not None
        threads = int(spark.conf.get("spark.task.cpus", "1") or "1")
        spec = EncoderSpec(
            model_path, resolve_precision(config.precision), config.encode_batch_size, threads
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
