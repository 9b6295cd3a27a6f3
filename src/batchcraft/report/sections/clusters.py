"""Cluster sizes, prototypicality, sample texts and a 2-D map of the centroids."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batchcraft.report.sampling import GroupedSample

SAMPLES_PER_CLUSTER = 3
CLUSTERS_SHOWN = 3


class ClusterStats:
    """Accumulates per-cluster row counts, kept counts, mean centroid similarity and samples.

    Args:
        num_clusters: Number of k-means clusters (rows of centroids.npy).
        seed: Seed of the random sampling keys (the report is deterministic).
    """

    columns: tuple[str, ...] = ("id", "cluster", "centroid_sim", "keep", "dup_kind")

    def __init__(self, num_clusters: int, seed: int = 0) -> None:
        self.num_clusters = num_clusters
        self.rows = np.zeros(num_clusters, dtype=np.int64)
        self.kept = np.zeros(num_clusters, dtype=np.int64)
        self.similarity_sum = np.zeros(num_clusters, dtype=np.float64)
        self.out_of_range = 0
        self.samples = GroupedSample(SAMPLES_PER_CLUSTER)
        self._rng = np.random.default_rng(seed)

    def update(self, batch: pa.RecordBatch, shard: int) -> None:
        """Fold one batch into the per-cluster totals and samples."""
        clusters = pc.fill_null(batch["cluster"], -1).to_numpy().astype(np.int64)
        valid = (clusters >= 0) & (clusters < self.num_clusters)
        self.out_of_range += int(np.count_nonzero(~valid))
        clusters = clusters[valid]
        keep = pc.fill_null(batch["keep"], False).to_numpy(zero_copy_only=False)[valid]
        similarity = np.nan_to_num(
            batch["centroid_sim"].to_numpy(zero_copy_only=False).astype(np.float64)[valid]
        )
        size = self.num_clusters
        self.rows += np.bincount(clusters, minlength=size)
        self.kept += np.bincount(clusters[keep], minlength=size)
        self.similarity_sum += np.bincount(clusters, weights=similarity, minlength=size)
        indices = np.flatnonzero(valid)
        payload = {
            "id": batch["id"].take(indices),
            "centroid_sim": similarity,
            "dup_kind": batch["dup_kind"].take(indices),
        }
        self.samples.offer(clusters, self._rng.random(len(clusters)), payload)

    def shown_clusters(self) -> tuple[list[int], list[int]]:
        """The largest and the smallest non-empty clusters (ties broken by cluster id)."""
        nonempty = np.flatnonzero(self.rows > 0)
        order = nonempty[np.lexsort((nonempty, -self.rows[nonempty]))]
        largest = order[:CLUSTERS_SHOWN].tolist()
        smallest = [c for c in order[::-1][:CLUSTERS_SHOWN].tolist() if c not in largest]
        return largest, smallest

    def sample_ids(self) -> list[str]:
        """Ids of the sample rows of the clusters the report shows."""
        largest, smallest = self.shown_clusters()
        return [row["id"] for c in largest + smallest for row in self.samples.rows(c)]


def centroid_map(centroids: np.ndarray) -> dict[str, Any]:
    """Project centroids onto their first two principal components.

    Returns:
        ``x`` and ``y`` coordinates per cluster and the share of variance each axis explains.
    """
    if centroids.shape[0] < 2:
        zeros = [0.0] * centroids.shape[0]
        return {"x": zeros, "y": zeros, "explained_variance": [0.0, 0.0]}
    centered = centroids - centroids.mean(axis=0)
    _, singular, components = np.linalg.svd(centered, full_matrices=False)
    coords = centered @ components[:2].T
    if coords.shape[1] < 2:
        coords = np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
    variance = singular**2
    explained = (variance[:2] / variance.sum()).tolist() if variance.sum() > 0 else [0.0, 0.0]
    return {
        "x": np.round(coords[:, 0], 5).tolist(),
        "y": np.round(coords[:, 1], 5).tolist(),
        "explained_variance": [round(value, 4) for value in explained],
    }


def cluster_section(
    stats: ClusterStats, centroids: np.ndarray | None, fetched: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """The report's cluster section.

    Args:
        stats: The accumulated cluster statistics.
        centroids: The centroid matrix, or None when the dataset has none.
        fetched: Rows fetched by id (``text``, ``source``) for the sample texts.
    """
    rows = stats.rows
    mean_similarity = np.divide(
        stats.similarity_sum, rows, out=np.full(len(rows), np.nan), where=rows > 0
    )
    largest, smallest = stats.shown_clusters()

    def describe(cluster: int) -> dict[str, Any]:
        samples = [
            {
                "id": row["id"],
                "centroid_sim": round(row["centroid_sim"], 4),
                "dup_kind": row["dup_kind"],
                "text": fetched.get(row["id"], {}).get("text"),
                "pair_text": fetched.get(row["id"], {}).get("pair_text"),
                "source": fetched.get(row["id"], {}).get("source"),
            }
            for row in sorted(stats.samples.rows(cluster), key=lambda r: -r["centroid_sim"])
        ]
        return {
            "cluster": cluster,
            "rows": int(rows[cluster]),
            "kept": int(stats.kept[cluster]),
            "mean_centroid_sim": round(float(mean_similarity[cluster]), 4),
            "samples": samples,
        }

    nonempty = rows[rows > 0]
    return {
        "num_clusters": stats.num_clusters,
        "num_empty": int(np.count_nonzero(rows == 0)),
        "rows_out_of_range": stats.out_of_range,
        "sizes": rows.tolist(),
        "kept": stats.kept.tolist(),
        "mean_centroid_sim": [None if np.isnan(v) else round(float(v), 4) for v in mean_similarity],
        "size_summary": {
            "min": int(nonempty.min()) if nonempty.size else 0,
            "median": float(np.median(nonempty)) if nonempty.size else 0.0,
            "max": int(nonempty.max()) if nonempty.size else 0,
        },
        "largest": [describe(c) for c in largest],
        "smallest": [describe(c) for c in smallest],
        "map": None if centroids is None else centroid_map(centroids),
    }
