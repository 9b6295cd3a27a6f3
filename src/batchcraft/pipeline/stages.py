"""The pipeline stages as Spark DataFrame -> DataFrame functions: one index of them all.

Each stage is a thin adapter, in a module of its own family (``read_stage``, ``dedup_stage``,
``embed_stage``, ``cluster_stage``, ``concepts_stage``): it ships a pure function (``parse``,
``embed``, ``cluster``, ``semdedup``, ``concepts``) to the executors with
``mapInArrow``/``applyInArrow`` and wires the shuffles. This module is their one index, and
the job calls them through it. Teams with their own Spark job can call these directly on
their DataFrames::

    df = spark.read.parquet("corpus/")                      # needs columns id, text
    df = embed(df, EncoderSpec(resolve_model_path(None)))   # + embedding
    centroids = fit_centroids(df, num_clusters=100)
    df = assign_clusters(df, centroids)                     # + cluster, centroid_sim, ...
    df = semantic_dedup(df, eps=0.1)                        # + max_sim, dup_of, dup_kind, keep
"""

from __future__ import annotations

from batchcraft.pipeline.cluster_stage import KMeansFit, assign_clusters, fit_centroids, fit_kmeans
from batchcraft.pipeline.concepts_stage import annotate_concepts
from batchcraft.pipeline.dedup_stage import exact_dedup, semantic_dedup
from batchcraft.pipeline.embed_stage import embed, normalize_embeddings
from batchcraft.pipeline.read_stage import (
    embedding_dimension,
    read_corpus,
    reject_duplicate_ids,
    reject_wrong_dimension,
)

__all__ = [
    "KMeansFit",
    "annotate_concepts",
    "assign_clusters",
    "embed",
    "embedding_dimension",
    "exact_dedup",
    "fit_centroids",
    "fit_kmeans",
    "normalize_embeddings",
    "read_corpus",
    "reject_duplicate_ids",
    "reject_wrong_dimension",
    "semantic_dedup",
]
