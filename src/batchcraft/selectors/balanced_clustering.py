"""Balanced clustering by recursive 2-means, and NGAME's cluster-to-batch step."""

from __future__ import annotations

import numpy as np

from batchcraft.errors import ConfigError

_ROWS_PER_CHUNK = 2048
"""Rows of one level split together: small enough for the gathered vectors to stay in cache."""


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

    The recursion is evaluated a tree level at a time: all splits of one
    level (and size) run as one batch of numpy operations, with the same
    per-split arithmetic and the seeds drawn in the recursion's depth-first
    order, so the clusters equal those of splitting one node at a time.

    Args:
        embeddings: (n, d) row embeddings (normalised internally).
        cluster_size: the largest cluster wanted; 1 gives singletons (random batches).
        rng: source of the seeds.
        iterations: 2-means refinement steps per split.

    Returns:
        Row-index arrays that partition ``range(n)``, in depth-first order (left first).

    Example:
        >>> points = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
        >>> sorted(sorted(c.tolist()) for c in balanced_clusters(points, 2, np.random.default_rng(0)))
        [[0, 1], [2, 3]]
    """
    if cluster_size < 1:
        raise ConfigError(f"{cluster_size=} must be >= 1")
    num_rows = embeddings.shape[0]
    if cluster_size == 1:
        return list(np.arange(num_rows, dtype=np.int64).reshape(num_rows, 1))
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    # rows kept in the current left-to-right order, so every node is a contiguous block
    arranged = (embeddings / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
    seeds = _split_seeds(num_rows, cluster_size, rng)
    order = np.arange(num_rows, dtype=np.int64)
    buffer = np.empty_like(arranged)  # the rows of the nodes being split, in ranking order
    nodes = np.array([1], dtype=np.int64)  # heap numbering: children of k are 2k and 2k + 1
    starts = np.array([0], dtype=np.int64)
    sizes = np.array([num_rows], dtype=np.int64)
    while (split := sizes > cluster_size).any():
        for size in np.unique(sizes[split]).tolist():
            group = np.flatnonzero(split & (sizes == size))
            num_chunks = min(len(group), -(-len(group) * size // _ROWS_PER_CHUNK))
            for chunk in np.array_split(group, num_chunks):
                positions = _positions(starts[chunk], size)
                chunk_seeds = np.stack([seeds[node] for node in nodes[chunk].tolist()])
                ranked = _balanced_splits(
                    arranged[positions], size, chunk_seeds, iterations, buffer
                )
                order[positions] = order[positions][ranked]
                arranged[positions] = buffer[: len(ranked)]
        nodes, starts, sizes = _children(nodes, starts, sizes, split)
    return np.split(order, starts[1:])


def _positions(starts: np.ndarray, size: int) -> slice | np.ndarray:
    """The rows of nodes of ``size`` rows at ``starts``: a slice when they are adjacent."""
    if np.array_equal(np.diff(starts), np.full(len(starts) - 1, size)):
        return slice(int(starts[0]), int(starts[0]) + len(starts) * size)
    return (starts[:, None] + np.arange(size)).reshape(-1)


def _split_seeds(
    num_rows: int, cluster_size: int, rng: np.random.Generator
) -> dict[int, np.ndarray]:
    """The two seed positions of every split, by heap number, drawn in depth-first order.

    Node sizes depend only on ``num_rows`` (a node of m rows splits into m // 2
    and m - m // 2), so the draws can precede the splits.
    """
    seeds: dict[int, np.ndarray] = {}
    pending = [(1, num_rows)]
    while pending:
        node, size = pending.pop()
        if size <= cluster_size:
            continue
        seeds[node] = rng.choice(size, 2, replace=False)
        pending.extend([(2 * node + 1, size - size // 2), (2 * node, size // 2)])
    return seeds


def _children(
    nodes: np.ndarray, starts: np.ndarray, sizes: np.ndarray, split: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The next level, left to right: split nodes replaced by their halves, leaves kept."""
    parent = np.repeat(np.arange(len(nodes)), np.where(split, 2, 1))
    right = np.zeros(len(parent), dtype=bool)
    right[1:] = parent[1:] == parent[:-1]
    halves = sizes[parent] // 2
    is_split = split[parent]
    child_nodes = np.where(is_split, 2 * nodes[parent] + right, nodes[parent])
    child_starts = starts[parent] + np.where(right, halves, 0)
    child_sizes = np.where(is_split, np.where(right, sizes[parent] - halves, halves), sizes[parent])
    return child_nodes, child_starts, child_sizes


def _balanced_splits(
    rows: np.ndarray, size: int, seeds: np.ndarray, iterations: int, buffer: np.ndarray
) -> np.ndarray:
    """Rank the members of k nodes of ``size`` rows each; a node's first ``size // 2`` go left.

    Args:
        rows: (k·size, d) unit rows, node after node.
        seeds: (k, 2) positions (in their node) of the initial centroids.
        buffer: at least k·size rows; receives ``rows`` in ranking order.

    Returns:
        (k·size,) positions in ``rows``, node after node, each node's in ranking order.

    Every step is the single-node computation applied per node: per-node
    matrix-vector and dot products (``matmul`` calls the same BLAS routine for
    each stacked node), sums over rows in ranking order and a stable sort, so
    the result does not depend on how nodes are batched.
    """
    count = len(seeds)
    vectors = rows.reshape(count, size, -1)
    ranked = buffer[: len(rows)].reshape(vectors.shape)
    centroids = vectors[np.arange(count)[:, None], seeds]  # (k, 2, d)
    half = size // 2
    first_rows = np.arange(count)[:, None] * size
    ranking = first_rows + np.arange(size)
    if iterations == 0:
        ranked[...] = vectors
    for iteration in range(iterations):
        direction = centroids[:, 0] - centroids[:, 1]
        preference = np.matmul(vectors, direction[:, :, None])[:, :, 0]
        previous, ranking = ranking, first_rows + np.argsort(-preference, axis=1, kind="stable")
        if iteration > 0 and np.array_equal(ranking, previous):
            # A fixed point: the same ranking gives the same centroids, so every
            # further iteration would repeat it; `ranked` already holds this order.
            break
        np.take(rows, ranking.reshape(-1), axis=0, out=ranked.reshape(len(rows), -1), mode="clip")
        for side, part in enumerate((ranked[:, :half], ranked[:, half:])):
            mean = part.sum(axis=1)
            norm = np.sqrt(np.matmul(mean[:, None, :], mean[:, :, None])[:, 0, 0])
            moved = norm.astype(np.float64) > 1e-12
            centroids[moved, side] = mean[moved] / norm[moved, None]
    return ranking.reshape(-1)


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
