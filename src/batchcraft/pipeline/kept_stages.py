"""The stages whose outputs the work directory keeps for a rerun (`resume`): embed, and the
k-means fit of the cluster stage.

The embed stage's output (the rows with their embeddings) is by far the costliest to
remake. The k-means fit is next (a sample's training, seconds to minutes), and it is tiny:
its centroids are kept under a key made of the embed key and the k-means parameters
(``num_clusters``, ``kmeans_iterations``, ``kmeans_sample_size``), so a rerun after a kill
in a later stage, or with ``eps``, concepts, shards or reference scores changed, assigns
the rows to the kept centroids instead of training again, and a changed k-means parameter
refits without re-embedding. Each stage reused is named in the manifest's
``stages_reused``. Runs ``--against`` earlier datasets take their centroids (or refit on the
union with ``recluster``), so only their embed output is kept.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
from pyspark.sql import DataFrame, SparkSession

from batchcraft.pipeline.cluster.stage import KMeansFit, assign_clusters, configured_fit
from batchcraft.pipeline.config import CurateConfig
from batchcraft.pipeline.embedding.sentence_encoder import EncoderSpec
from batchcraft.pipeline.embedding.stage import embed_step
from batchcraft.pipeline.frames import PersistedFrames
from batchcraft.pipeline.incremental.predecessors import Predecessor, check_dimension
from batchcraft.pipeline.read.discovery import InputFile
from batchcraft.pipeline.resume import StageStore, embed_key, stage_store
from batchcraft.pipeline.resume_store import PrefixStageStore

Store = StageStore | PrefixStageStore
CENTROIDS_DDL = "cluster int, centroid array<float>, sample_size long"


@dataclass(frozen=True)
class EmbedInputs:
    """What the embed stage's key is made of, known before Spark starts.

    Attributes:
        files: The run's input files (their fingerprints).
        model_path: The encoder's directory (None for precomputed vectors).
        predecessors: The ``--against`` datasets (their manifest fingerprints).
    """

    files: list[InputFile]
    model_path: str | None
    predecessors: list[Predecessor]


@dataclass
class KeptStages:
    """A run's work directory (None: it keeps nothing), the key of its embed output, and
    which stages it reused (`stages_reused`, in stage order)."""

    spark: SparkSession
    config: CurateConfig
    inputs: EmbedInputs
    store: Store | None
    embed_key: str
    reused: list[str]

    @classmethod
    def of(cls, spark: SparkSession, config: CurateConfig, inputs: EmbedInputs) -> KeptStages:
        fingerprints = [predecessor.fingerprint for predecessor in inputs.predecessors]
        key = embed_key(config, inputs.files, inputs.model_path, fingerprints)
        return cls(spark, config, inputs, stage_store(config), key, [])

    def embed(
        self,
        representatives: DataFrame,
        num_rows: int,
        frames: PersistedFrames,
        counts: dict[str, int],
    ) -> tuple[DataFrame, EncoderSpec | None]:
        """The embedded rows (read back when kept) and the encoder; embeddings the
        predecessors cannot be compared with are neither kept nor go on."""
        store, key, inputs = self.store, self.embed_key, self.inputs
        kept = store.load(self.spark, "embed", key) if store else None
        embedded, spec = embed_step(
            self.spark, self.config, representatives, num_rows, inputs.model_path, frames,
            counts, kept,
        )  # fmt: skip
        if inputs.predecessors:
            dimension = len(embedded.select("embedding").first()[0])  # type: ignore[index]
            check_dimension(inputs.predecessors, dimension)
        if kept is not None:
            self.reused.append("embed")
        elif store:
            store.save(embedded, "embed", key)
        return embedded, spec

    def cluster(
        self,
        embedded: DataFrame,
        num_rows: int,
        frames: PersistedFrames,
        counts: dict[str, int],
    ) -> tuple[KMeansFit, DataFrame]:
        """The k-means fit (the kept one when there is one) and the rows with their
        clusters (cached)."""
        key = self._kmeans_key()
        kmeans = self._kept_fit(key)
        if kmeans is None:
            kmeans = configured_fit(self.config, embedded, num_rows)
            if self.store:
                self.store.save(_centroid_rows(self.spark, kmeans), "kmeans", key)
        else:
            self.reused.append("cluster")
        clustered = frames.keep(assign_clusters(embedded, kmeans.centroids))
        counts["clusters"] = len(kmeans.centroids)
        counts["sampled"] = kmeans.sample_size
        counts["rows"] = clustered.count()
        return kmeans, clustered

    def _kmeans_key(self) -> str:
        config = self.config
        params = [self.embed_key, config.num_clusters, config.kmeans_iterations,
                  config.kmeans_sample_size]  # fmt: skip
        return hashlib.sha256(json.dumps(params).encode()).hexdigest()[:32]

    def _kept_fit(self, key: str) -> KMeansFit | None:
        kept = self.store.load(self.spark, "kmeans", key) if self.store else None
        if kept is None:
            return None
        table = kept.toArrow().sort_by("cluster")
        if table.num_rows == 0:
            return None
        centroids = np.asarray(table.column("centroid").to_pylist(), dtype=np.float32)
        return KMeansFit(centroids, int(table.column("sample_size")[0].as_py()))


def _centroid_rows(spark: SparkSession, kmeans: KMeansFit) -> DataFrame:
    rows = [
        (index, [float(value) for value in centroid], kmeans.sample_size)
        for index, centroid in enumerate(np.asarray(kmeans.centroids, dtype=np.float32))
    ]
    return spark.createDataFrame(rows, CENTROIDS_DDL).coalesce(1)
