"""The embed stage: unit-norm vectors for the unique rows, from the encoder or from the
precomputed vectors of the input."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
from pyspark.sql import DataFrame

from batchcraft.dataset.arrays import to_list_array, to_matrix
from batchcraft.pipeline.encoder import EncoderSpec, cached_encoder, unit_norm
from batchcraft.pipeline.schemas import VECTOR, extend_schema


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
