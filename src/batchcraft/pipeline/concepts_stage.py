"""The concepts stage's Spark adapter: zero-shot concept names for every row, from the
similarity of its embedding to the embedded concept vocabulary."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import types as T

from batchcraft.dataset.arrays import to_matrix
from batchcraft.pipeline.concepts import zero_shot_concepts
from batchcraft.pipeline.schemas import extend_schema


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
