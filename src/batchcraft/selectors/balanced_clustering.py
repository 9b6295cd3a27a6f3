"""Balanced clustering by recursive 2-means, and NGAME's cluster-to-batch step."""

from __future__ import annotations

import numpy as np

from batchcraft.errors import ConfigError


def balanced_clusters(
    embeddings: np.ndarray,
    cluster_size: int,
    rng: np.random.Generator,
    iterations: int = 4,
) -> list[np.ndarray]:
    """Split rows into clusters of ``cluster_size / 2 < size ≤ cluster_size`` similar rows.

    Recursive balanced spherical 2-means, as in the NGAME reference code:
    each split seeds two centroids with random members, then alternates
    "sort members by (similarity to centroid A − similarity to centroid B)
    and cut at the median" with centroid updates. Cutting at the median keeps
    the halves equal, so every final cluster has the same size up to one row.

    Args:
        embeddings: (n, d) row embeddings (normalised internally).
        cluster_size: the largest cluster wanted; 1 gives singletons (random batches).
        rng: source of the seeds.
        iterations: 2-means refinement steps per split.

    Returns:
        Row-index arrays that partition ``range(n)``.

    Example:
        >>> points = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
        >>> sorted(sorted(c.tolist()) for c in balanced_clusters(points, 2, np.random.default_rng(0)))
        [[0, 1], [2, 3]]
    """
    if cluster_size < 1:
        raise ConfigError(f"{cluster_size=} must be >= 1")
    num_rows = embeddings.shape[0]
    if cluster_size == 1:
        return [np.array([row], dtype=np.int64) for row in range(num_rows)]
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    unit = (embeddings / np.maximum(norms, 1e-12)).astype(np.float32)
    pending = [np.arange(num_rows, dtype=np.int64)]
    finished: list[np.ndarray] = []
    while pending:
        members = pending.pop()
        if len(members) <= cluster_size:
            finished.append(members)
            continue
        left, right = _balanced_split(unit[members], rng, iterations)
        pending.extend([members[right], members[left]])
    return finished


def _balanced_split(
    unit: np.ndarray, rng: np.random.Generator, iterations: int
) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the two equal halves of ``unit`` (rows are unit vectors)."""
    seeds = rng.choice(len(unit), 2, replace=False)
    centroids = unit[seeds].copy()
    half = len(unit) // 2
    order = np.arange(len(unit))
    for _ in range(iterations):
        preference = unit @ (centroids[0] - centroids[1])
        order = np.argsort(-preference, kind="stable")
        for side, part in enumerate((order[:half], order[half:])):
            mean = unit[part].sum(axis=0)
            norm = float(np.linalg.norm(mean))
            if norm > 1e-12:
                centroids[side] = mean / norm
    return order[:half], order[half:]


def batches_from_clusters(
    clusters: list[np.ndarray], batch_size: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Shuffle the clusters, concatenate them and cut consecutive batches (NGAME).

    Every row lands in exactly one batch; the last batch may be smaller.
    """
    if batch_size < 1:
        raise ConfigError(f"{batch_size=} must be >= 1")
    if not clusters:
        return []
    order = rng.permutation(len(clusters))
    rows = np.concatenate([clusters[position] for position in order]).astype(np.int64)
    return [rows[start : start + batch_size] for start in range(0, len(rows), batch_size)]
