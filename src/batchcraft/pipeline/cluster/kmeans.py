"""Spherical k-means with FAISS: trained on a bounded sample, applied to every row."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from batchcraft._deps import require
from batchcraft.pipeline.config import DEFAULT_KMEANS_ITERATIONS
from batchcraft.pipeline.embedding.vectors import unit_norm


@dataclass(frozen=True)
class Assignment:
    """Nearest and second-nearest centroid of each row, with cosine similarities."""

    cluster: np.ndarray  # int32 (n,)
    centroid_sim: np.ndarray  # float32 (n,)
    second_cluster: np.ndarray  # int32 (n,), -1 when there is a single centroid
    second_sim: np.ndarray  # float32 (n,)


def train_centroids(
    sample: np.ndarray,
    num_clusters: int,
    iterations: int = DEFAULT_KMEANS_ITERATIONS,
    seed: int = 0,
    *,
    in_place: bool = False,
    threads: int | None = None,
) -> np.ndarray:
    """Fit spherical k-means on ``sample`` and return (k, d) unit-norm float32 centroids.

    Uses the GPU when FAISS has one. ``num_clusters`` is capped at the sample size.
    ``in_place`` normalises a float32 C-contiguous ``sample`` in place instead of copying it.
    ``threads`` sets FAISS's OpenMP threads for this call (Spark starts Python workers
    with ``OMP_NUM_THREADS`` = the task's cores, one by default).
    """
    faiss = require("faiss")
    if threads is not None:  # for this call only: Python workers are reused across tasks
        previous = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(max(1, threads))
        try:
            return train_centroids(sample, num_clusters, iterations, seed, in_place=in_place)
        finally:
            faiss.omp_set_num_threads(previous)
    sample = np.ascontiguousarray(sample, dtype=np.float32)
    if in_place:
        sample /= np.maximum(np.linalg.norm(sample, axis=1, keepdims=True), 1e-12)
    else:
        sample = np.ascontiguousarray(unit_norm(sample))
    num_clusters = max(1, min(num_clusters, len(sample)))
    if num_clusters == 1:
        return unit_norm(sample.mean(axis=0, keepdims=True))
    kmeans = faiss.Kmeans(
        sample.shape[1],
        num_clusters,
        niter=iterations,
        seed=seed,
        spherical=True,
        gpu=_use_gpu(faiss),
        verbose=False,
        max_points_per_centroid=max(256, len(sample) // num_clusters + 1),
    )
    kmeans.train(sample)
    return unit_norm(np.asarray(kmeans.centroids, dtype=np.float32))


def assign(embeddings: np.ndarray, centroids: np.ndarray) -> Assignment:
    """Top-2 centroids of each row by cosine (rows and centroids are unit norm)."""
    embeddings = np.asarray(embeddings, dtype=np.float32)
    num_rows = len(embeddings)
    if len(centroids) == 1 or num_rows == 0:
        sims = embeddings @ centroids[0] if num_rows else np.zeros(0, np.float32)
        minus = np.full(num_rows, -1, dtype=np.int32)
        return Assignment(
            np.zeros(num_rows, np.int32),
            sims.astype(np.float32),
            minus,
            np.full(num_rows, -1.0, np.float32),
        )
    scores = embeddings @ centroids.T
    top2 = np.argpartition(-scores, 1, axis=1)[:, :2]
    top2_scores = np.take_along_axis(scores, top2, axis=1)
    order = np.argsort(-top2_scores, axis=1, kind="stable")
    top2 = np.take_along_axis(top2, order, axis=1)
    top2_scores = np.take_along_axis(top2_scores, order, axis=1)
    return Assignment(
        top2[:, 0].astype(np.int32),
        top2_scores[:, 0].astype(np.float32),
        top2[:, 1].astype(np.int32),
        top2_scores[:, 1].astype(np.float32),
    )


def _use_gpu(faiss: object) -> bool:
    get_num_gpus = getattr(faiss, "get_num_gpus", None)
    return bool(get_num_gpus and get_num_gpus() > 0)
