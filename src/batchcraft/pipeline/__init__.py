"""The offline curation pipeline (Spark): validate, exact dedup, embed, cluster, SemDeDup, concepts.

``curate(...)`` runs the whole job. The stages are also importable one by one as Spark
DataFrame -> DataFrame functions (``embed``, ``fit_centroids``, ``assign_clusters``,
``semantic_dedup``, ``annotate_concepts``, ``exact_dedup``, ``read_corpus``) for teams that
run their own SparkSession. pyspark is imported only when one of them is first used.
"""

from __future__ import annotations

from typing import Any

from batchcraft.pipeline.config import CurateConfig

_STAGES = (
    "read_corpus",
    "reject_duplicate_ids",
    "embedding_dimension",
    "reject_wrong_dimension",
    "exact_dedup",
    "embed",
    "normalize_embeddings",
    "fit_centroids",
    "fit_kmeans",
    "assign_clusters",
    "semantic_dedup",
    "annotate_concepts",
)

__all__ = ["CurateConfig", "curate", "spark_session", *_STAGES]


def __getattr__(name: str) -> Any:
    if name == "curate":
        from batchcraft.pipeline.job import curate

        return curate
    if name == "spark_session":
        from batchcraft.pipeline.session import spark_session

        return spark_session
    if name in _STAGES:
        from batchcraft.pipeline import stages

        return getattr(stages, name)
    raise AttributeError(f"module 'batchcraft.pipeline' has no attribute {name!r}")
