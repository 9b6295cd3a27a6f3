"""The offline curation pipeline (Spark): validate, exact dedup, MinHash near dedup, embed,
cluster, SemDeDup, concepts, reference scores.

``curate(...)`` runs the whole job and writes the curated dataset (the report is the
caller's to ask for: ``batchcraft.curation.curate`` does both). The stages are also
importable one by one as Spark DataFrame -> DataFrame functions (``minhash_dedup``, ``embed``,
``fit_centroids``, ``assign_clusters``, ``semantic_dedup``, ``annotate_concepts``,
``reference_scores``, ``exact_dedup``, ``read_corpus``) for teams that run their own SparkSession. pyspark is
imported only when one of them is first used.

Each step lives in a folder of its own (``read/``, ``dedup/``, ``minhash/``, ``embedding/``, ``cluster/``,
``concepts/``, ``scores/``, ``write/``): its pure per-batch functions (numpy/pyarrow, no Spark) beside its
Spark adapter, ``stage.py``. ``curation_job`` strings the steps together.
"""

from __future__ import annotations

import importlib
from typing import Any

from batchcraft.pipeline.config import CurateConfig

_STAGES = {  # exported name -> the module it lives in
    "read_corpus": "batchcraft.pipeline.read.stage",
    "reject_duplicate_ids": "batchcraft.pipeline.read.stage",
    "embedding_dimension": "batchcraft.pipeline.read.stage",
    "reject_wrong_dimension": "batchcraft.pipeline.read.stage",
    "exact_dedup": "batchcraft.pipeline.dedup.stage",
    "minhash_dedup": "batchcraft.pipeline.minhash.stage",
    "embed": "batchcraft.pipeline.embedding.stage",
    "normalize_embeddings": "batchcraft.pipeline.embedding.stage",
    "fit_centroids": "batchcraft.pipeline.cluster.stage",
    "fit_kmeans": "batchcraft.pipeline.cluster.stage",
    "assign_clusters": "batchcraft.pipeline.cluster.stage",
    "semantic_dedup": "batchcraft.pipeline.dedup.stage",
    "annotate_concepts": "batchcraft.pipeline.concepts.stage",
    "reference_scores": "batchcraft.pipeline.scores.stage",
}
_EXPORTS = {
    "curate": "batchcraft.pipeline.curation_job",
    "spark_session": "batchcraft.pipeline.spark",
    **_STAGES,
}

__all__ = ["CurateConfig", *_EXPORTS]


def __getattr__(name: str) -> Any:
    # No submodule may be named like an export: once imported, a submodule becomes an
    # attribute of this package and hides the function (tests/pipeline guard it).
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'batchcraft.pipeline' has no attribute {name!r}")
