"""The concepts stage's Spark adapter: zero-shot concept names for every row, from the
similarity of its embedding to the embedded concept vocabulary. `concepts_step` is this
stage in the curation job: zero-shot, or the concepts given in the input."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from batchcraft.dataset.arrays import to_matrix
from batchcraft.pipeline.concepts.zero_shot import zero_shot_concepts
from batchcraft.pipeline.config import CurateConfig
from batchcraft.pipeline.embedding.sentence_encoder import EncoderSpec, cached_encoder
from batchcraft.pipeline.frames import PersistedFrames
from batchcraft.pipeline.spark_schema import extend_schema


def annotate_concepts(
    df: DataFrame,
    concept_embeddings: np.ndarray,
    names: list[str],
    threshold: float,
    max_concepts: int,
) -> DataFrame:
    """Add ``concepts``: zero-shot concept names by embedding similarity to the vocabulary."""
    shared = df.sparkSession.sparkContext.broadcast(
        np.asarray(concept_embeddings, dtype=np.float32)
    )

    def annotate(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            concepts = zero_shot_concepts(
                to_matrix(batch.column("embedding")), shared.value, names, threshold, max_concepts
            )
            yield batch.append_column("concepts", pa.array(concepts, pa.list_(pa.string())))

    return df.mapInArrow(annotate, extend_schema(df, {"concepts": T.ArrayType(T.StringType())}))


def concepts_step(
    config: CurateConfig,
    deduped: DataFrame,
    vocabulary: list[str] | None,
    spec: EncoderSpec | None,
    frames: PersistedFrames,
    counts: dict[str, int],
) -> DataFrame:
    """The rows with ``concepts``: zero-shot from ``vocabulary`` when there is one (cached,
    and then ``deduped`` is released here), else those given in the input (a projection
    of ``deduped``, which stays cached)."""
    if vocabulary is None:  # no vectors to compare: a projection of the cached rows
        annotated = _given_concepts(deduped, config.concept_column)
    else:
        annotated = frames.keep(_zero_shot_concepts(deduped, config, vocabulary, spec))
    counts["annotated"] = (
        annotated.where(F.size("concepts") > 0).count()
        if vocabulary or config.concept_column
        else 0
    )
    if vocabulary is not None:
        # Only now: releasing the rows before `annotated` is materialised by the count
        # makes Spark recompute them from the corpus, embedding every text again.
        frames.release(deduped)
    return annotated


def _zero_shot_concepts(
    df: DataFrame, config: CurateConfig, vocabulary: list[str], spec: EncoderSpec | None
) -> DataFrame:
    assert spec is not None, "CurateConfig refuses zero-shot concepts with precomputed vectors"
    vectors = cached_encoder(spec).encode(vocabulary)
    return annotate_concepts(df, vectors, vocabulary, config.concept_threshold, config.max_concepts)


def _given_concepts(df: DataFrame, concept_column: str | None) -> DataFrame:
    """The concepts given in the input (none when the input has no concept column)."""
    empty = F.array().cast("array<string>")
    if concept_column:
        return df.withColumn("concepts", F.coalesce("given_concepts", empty))
    return df.withColumn("concepts", empty)
