"""SemDeDup: semantic duplicates within k-means clusters, decided by a chain-safe keep rule.

Pure numpy; the Spark job applies :func:`cluster_edges` per cluster group and runs the keep
rule over the resulting edge list. Two defects of public implementations are avoided:

* chains: a row is removed only for resembling a row that is *kept* (a greedy maximal
  independent set in priority order), never one that was itself removed;
* cluster boundaries: each row is also compared inside its second-nearest cluster, so
  duplicate pairs split across two clusters are still found.

Similarities are computed in blocks, so memory is linear in the cluster size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from batchcraft.dataset.arrays import to_matrix

BLOCK_ROWS = 2048
PRIOR = "prior"
"""Column marking an earlier dataset's rows (``curate --against``): always kept, and
never compared with each other, only with the new rows."""


@dataclass(frozen=True)
class Edges:
    """Duplicate pairs: ``source`` outranks ``target`` (comes first in keep priority)."""

    source: np.ndarray  # int64 positions
    target: np.ndarray  # int64 positions
    similarity: np.ndarray  # float32


@dataclass(frozen=True)
class Decisions:
    """Result of the keep rule, aligned with the priority order given to it."""

    keep: np.ndarray  # bool
    dup_of: np.ndarray  # int64 position of the kept representative, -1 for kept rows
    dup_sim: np.ndarray  # float32 similarity to the representative, 0 for kept rows


def priority_order(ids: Sequence[str], centroid_sim: np.ndarray, keep_policy: str) -> np.ndarray:
    """Positions sorted from the first to survive to the last (ties broken by smallest id).

    ``prototypical`` keeps the row closest to its centroid, ``hardest`` the farthest
    (SemDeDup's default), ``smallest_id`` the smallest id.
    """
    id_rank = np.argsort(np.asarray(ids, dtype=object), kind="stable")
    rank_of = np.empty(len(ids), dtype=np.int64)
    rank_of[id_rank] = np.arange(len(ids))
    if keep_policy == "smallest_id":
        return id_rank.astype(np.int64)
    sims = np.asarray(centroid_sim, dtype=np.float64)
    primary = -sims if keep_policy == "prototypical" else sims
    return np.lexsort((rank_of, primary)).astype(np.int64)


def cluster_edges(embeddings: np.ndarray, threshold: float) -> tuple[Edges, np.ndarray]:
    """All pairs at cosine >= threshold among rows given in priority order.

    Args:
        embeddings: (n, d) unit-norm rows, sorted by keep priority (row 0 survives first).
        threshold: Cosine at or above which two rows are duplicates (1 - eps).

    Returns:
        The edges (source < target, so the source outranks the target) and each row's
        highest similarity to any other row of the group (-1 for a single row).
    """
    embeddings = np.asarray(embeddings, dtype=np.float32)
    count = len(embeddings)
    max_sim = np.full(count, -1.0, dtype=np.float32)
    sources, targets, sims = [], [], []
    for start in range(0, count, BLOCK_ROWS):
        block = embeddings[start : start + BLOCK_ROWS] @ embeddings.T
        rows = np.arange(start, start + len(block))
        block[rows - start, rows] = -np.inf  # a row is not its own duplicate
        max_sim[start : start + len(block)] = block.max(axis=1) if count > 1 else -1.0
        local, columns = np.nonzero(block >= threshold)
        absolute = local + start
        upper = absolute < columns
        sources.append(absolute[upper])
        targets.append(columns[upper])
        sims.append(block[local[upper], columns[upper]])
    return Edges(
        _concat(sources, np.int64), _concat(targets, np.int64), _concat(sims, np.float32)
    ), max_sim


def edges_to_new(
    embeddings: np.ndarray, prior: np.ndarray, threshold: float
) -> tuple[Edges, np.ndarray]:
    """`cluster_edges` restricted to the pairs with at least one new row (``prior`` False):
    an earlier dataset's rows are never compared with each other. Their ``max_sim`` is -1."""
    embeddings = np.asarray(embeddings, dtype=np.float32)
    count, new = len(embeddings), np.flatnonzero(~prior)
    max_sim = np.full(count, -1.0, dtype=np.float32)
    sources, targets, sims = [], [], []
    for start in range(0, len(new), BLOCK_ROWS):
        rows = new[start : start + BLOCK_ROWS]
        block = embeddings[rows] @ embeddings.T
        block[np.arange(len(rows)), rows] = -np.inf
        max_sim[rows] = block.max(axis=1) if count > 1 else -1.0
        local, columns = np.nonzero(block >= threshold)
        absolute = rows[local]
        once = prior[columns] | (absolute < columns)  # a pair of two new rows is seen twice
        sources.append(np.minimum(absolute, columns)[once])
        targets.append(np.maximum(absolute, columns)[once])
        sims.append(block[local[once], columns[once]])
    return Edges(
        _concat(sources, np.int64), _concat(targets, np.int64), _concat(sims, np.float32)
    ), max_sim


def group_edges(table: pa.Table, threshold: float) -> pa.Table:
    """The duplicate pairs of one cluster group (``id``, ``priority``, ``embedding``, and
    `PRIOR` when an earlier dataset's rows take part) as ids ``u`` (kept first), ``v``, and
    each row's highest similarity as a row ``(id, null, max_sim)``."""
    table = table.sort_by([("priority", "ascending"), ("id", "ascending")])
    ids = np.asarray(table.column("id").to_pylist(), dtype=object)
    embeddings = to_matrix(table.column("embedding"))
    if PRIOR in table.column_names:
        prior = np.asarray(table.column(PRIOR).to_pylist(), dtype=bool)
        edges, max_sim = edges_to_new(embeddings, prior, threshold)
    else:
        edges, max_sim = cluster_edges(embeddings, threshold)
    return pa.table(
        {
            "u": pa.array(np.concatenate([ids[edges.source], ids]), pa.string()),
            "v": pa.array(
                np.concatenate([ids[edges.target], np.full(len(ids), None)]), pa.string()
            ),
            "sim": pa.array(np.concatenate([edges.similarity, max_sim]).astype(np.float32)),
        }
    )


def greedy_keep(count: int, edges: Edges) -> Decisions:
    """Chain-safe keep rule over rows 0..count-1 in priority order.

    Row i is removed iff some row j < i with an edge to it is kept; it then points to the
    most similar such kept row. With A≈B, B≈C and A≉C this keeps A and C and removes B.
    """
    keep = np.ones(count, dtype=bool)
    dup_of = np.full(count, -1, dtype=np.int64)
    dup_sim = np.zeros(count, dtype=np.float32)
    order = np.lexsort((-edges.similarity, edges.source, edges.target))
    targets, sources, sims = edges.target[order], edges.source[order], edges.similarity[order]
    boundaries = np.flatnonzero(np.diff(targets)) + 1
    for group in np.split(np.arange(len(targets)), boundaries):
        if len(group) == 0:
            continue
        target = targets[group[0]]
        best = -1
        for position in group[np.argsort(-sims[group], kind="stable")]:
            if keep[sources[position]]:
                best = position
                break
        if best >= 0:
            keep[target] = False
            dup_of[target] = sources[best]
            dup_sim[target] = sims[best]
    return Decisions(keep, dup_of, dup_sim)


def brute_force_pairs(embeddings: np.ndarray, threshold: float) -> set[tuple[int, int]]:
    """Every pair (i < j) at cosine >= threshold over all rows: the reference for recall."""
    edges, _ = cluster_edges(embeddings, threshold)
    return set(zip(edges.source.tolist(), edges.target.tolist(), strict=True))


def _concat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)


def decide_edges(sources: np.ndarray, targets: np.ndarray, similarity: np.ndarray) -> Decisions:
    """The keep rule over an edge list whose ``source`` outranks its ``target`` (node indices).

    The rule only ever compares neighbours, so walking the edge DAG in any topological
    order (Kahn's algorithm) reproduces :func:`greedy_keep` exactly without needing the
    global priority order. Nodes are ``0..max index``.
    """
    count = int(max(sources.max(initial=-1), targets.max(initial=-1))) + 1
    keep = np.ones(count, dtype=bool)
    dup_of = np.full(count, -1, dtype=np.int64)
    dup_sim = np.zeros(count, dtype=np.float32)
    if count == 0:
        return Decisions(keep, dup_of, dup_sim)
    order = np.argsort(sources, kind="stable")
    out_start = np.searchsorted(sources[order], np.arange(count + 1))
    remaining = np.bincount(targets, minlength=count)
    ready = list(np.flatnonzero(remaining == 0))
    while ready:
        node = ready.pop()
        for position in order[out_start[node] : out_start[node + 1]]:
            target = targets[position]
            if keep[node] and similarity[position] > dup_sim[target] - (dup_of[target] < 0):
                dup_of[target], dup_sim[target] = node, similarity[position]
            remaining[target] -= 1
            if remaining[target] == 0:
                keep[target] = dup_of[target] < 0
                ready.append(target)
    return Decisions(keep, dup_of, dup_sim)
