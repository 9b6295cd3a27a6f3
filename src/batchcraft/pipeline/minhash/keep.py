"""Which rows of a MinHash duplicate group survive: the chain-safe keep rule of semantic
dedup (`batchcraft.pipeline.dedup.semantic.greedy_keep`) over one connected component.

A row is removed only for resembling a row that is kept: rows are visited in keep order,
and a row is removed iff a verified pair joins it to an earlier row that was kept; it
then points (``dup_of``) to the kept row of highest Jaccard (ties: the earlier one). With
A≈B, B≈C and A≉C in that order, A and C survive and only B goes.

The keep order is the priority (smaller first) then the id. MinHash runs before anything
is embedded, so the keep policies are read on the verified pairs instead of on the
centroid: ``prototypical`` puts first the row most similar to the rest of its group (the
largest sum of Jaccard over its verified pairs: the group's medoid, what the row nearest
to the centroid stands for), ``hardest`` the least similar, ``smallest_id`` the smallest id.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batchcraft.pipeline.dedup.semantic import Edges, greedy_keep

JACCARD_UNITS = 1_000_000
"""Jaccard sums are added in integer millionths: exact in any order, so every partitioning
of the pairs ranks the rows alike."""

DECISIONS_SCHEMA = pa.schema(
    [("id", pa.string()), ("dup_of", pa.string()), ("dup_jaccard", pa.float64())]
)


def keep_in_component(edges: pa.Table) -> pa.Table:
    """The removed rows of one duplicate group, with ``dup_of`` and ``dup_jaccard``.

    Args:
        edges: Verified pairs ``u``, ``v`` (ids), their ``jaccard``, and the priority of
            either end (``u_priority``, ``v_priority``).

    Returns:
        ``id``, ``dup_of``, ``dup_jaccard`` of every removed row (`DECISIONS_SCHEMA`).
    """
    ends = pa.concat_arrays(
        [edges.column("u").combine_chunks(), edges.column("v").combine_chunks()]
    ).cast(pa.string())  # Spark may send large_string
    priorities = np.concatenate(
        [edges.column(f"{end}_priority").to_numpy().astype(np.int64) for end in ("u", "v")]
    )
    nodes = pc.dictionary_encode(ends)
    names = nodes.dictionary
    node_of_end = nodes.indices.to_numpy().astype(np.int64)
    node_priority = np.zeros(len(names), dtype=np.int64)
    node_priority[node_of_end] = priorities
    name_rank = np.argsort(np.argsort(np.asarray(names.to_pylist(), dtype=object), kind="stable"))
    order = np.lexsort((name_rank, node_priority))  # keep order: priority, then id
    rank = np.empty(len(names), dtype=np.int64)
    rank[order] = np.arange(len(names))
    count = edges.num_rows
    first, second = rank[node_of_end[:count]], rank[node_of_end[count:]]
    jaccard = edges.column("jaccard").to_numpy().astype(np.float64)
    low, high = np.minimum(first, second), np.maximum(first, second)
    decisions = greedy_keep(len(names), Edges(low, high, jaccard))
    removed = np.flatnonzero(~decisions.keep)
    return pa.table(
        {
            "id": names.take(pa.array(order[removed])),
            "dup_of": names.take(pa.array(order[decisions.dup_of[removed]])),
            "dup_jaccard": pa.array(
                _jaccard_of(low, high, jaccard, removed, decisions.dup_of[removed]),
                pa.float64(),
            ),
        },
        schema=DECISIONS_SCHEMA,
    )


def _jaccard_of(
    low: np.ndarray, high: np.ndarray, jaccard: np.ndarray, removed: np.ndarray, kept: np.ndarray
) -> np.ndarray:
    """The exact (float64) Jaccard of each (removed, kept) pair: greedy_keep records it
    in float32, which could round a pair just at the threshold to just below."""
    lookup = {(int(a), int(b)): value for a, b, value in zip(low, high, jaccard, strict=True)}
    return np.array(
        [lookup[(int(min(r, k)), int(max(r, k)))] for r, k in zip(removed, kept, strict=True)],
        dtype=np.float64,
    )
