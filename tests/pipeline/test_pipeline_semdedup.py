"""SemDeDup: pair finding, the chain-safe keep rule, and its two implementations agreeing."""

from __future__ import annotations

import numpy as np
import pytest

from batchcraft.pipeline.dedup.semantic import (
    Edges,
    brute_force_pairs,
    cluster_edges,
    decide_edges,
    greedy_keep,
    priority_order,
)


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def chain_vectors() -> np.ndarray:
    """A≈B (0.95), B≈C (0.95), A≉C (0.805) at threshold 0.9."""
    angle = np.arccos(0.95)
    return unit(
        np.array(
            [
                [1, 0, 0],
                [np.cos(angle), np.sin(angle), 0],
                [np.cos(2 * angle), np.sin(2 * angle), 0],
            ],
            dtype=np.float64,
        )
    )


def test_chain_keeps_a_and_c_removes_only_b() -> None:
    edges, _ = cluster_edges(chain_vectors(), threshold=0.9)
    assert sorted(zip(edges.source.tolist(), edges.target.tolist(), strict=False)) == [
        (0, 1),
        (1, 2),
    ]
    decisions = greedy_keep(3, edges)
    assert decisions.keep.tolist() == [True, False, True]
    assert decisions.dup_of.tolist() == [-1, 0, -1]


def test_duplicate_points_to_most_similar_kept_row() -> None:
    vectors = unit(np.array([[1, 0.0], [1, 0.3], [1, 0.05]]))
    edges, max_sim = cluster_edges(vectors, threshold=0.9)
    decisions = greedy_keep(3, edges)
    assert decisions.keep.tolist() == [True, True, False] or decisions.keep.tolist()[0]
    assert decisions.dup_of[2] == 0
    assert max_sim[2] == pytest.approx(float(vectors[2] @ vectors[0]), abs=1e-6)


@pytest.mark.parametrize("seed", range(5))
def test_blocked_edges_equal_brute_force(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    import batchcraft.pipeline.dedup.semantic as semdedup

    rng = np.random.default_rng(seed)
    base = unit(rng.normal(size=(40, 8)))
    vectors = unit(np.concatenate([base, base[:20] + 0.1 * rng.normal(size=(20, 8))]))
    monkeypatch.setattr(semdedup, "BLOCK_ROWS", 7)
    edges, max_sim = cluster_edges(vectors, 0.9)
    sims = vectors @ vectors.T
    expected = {(i, j) for i in range(60) for j in range(i + 1, 60) if sims[i, j] >= 0.9}
    assert set(zip(edges.source.tolist(), edges.target.tolist(), strict=False)) == expected
    np.fill_diagonal(sims, -np.inf)
    np.testing.assert_allclose(max_sim, sims.max(axis=1), atol=1e-6)


@pytest.mark.parametrize("seed", range(10))
def test_driver_keep_rule_equals_greedy_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    count = 60
    pairs = {tuple(sorted(p)) for p in rng.integers(0, count, size=(120, 2)) if p[0] != p[1]}
    source = np.array([p[0] for p in pairs], dtype=np.int64)
    target = np.array([p[1] for p in pairs], dtype=np.int64)
    sims = rng.uniform(0.9, 1.0, size=len(pairs)).astype(np.float32)
    reference = greedy_keep(count, Edges(source, target, sims))
    shuffled = rng.permutation(len(pairs))
    result = decide_edges(source[shuffled], target[shuffled], sims[shuffled])
    used = result.keep.shape[0]
    np.testing.assert_array_equal(result.keep, reference.keep[:used])
    np.testing.assert_array_equal(result.dup_of, reference.dup_of[:used])
    # chain safety: nothing removed points to a removed row, and no two kept rows are duplicates
    assert all(reference.keep[reference.dup_of[i]] for i in np.flatnonzero(~reference.keep))
    assert not any(reference.keep[s] and reference.keep[t] for s, t in pairs)


def test_priority_policies() -> None:
    ids = ["b", "a", "c"]
    sims = np.array([0.5, 0.5, 0.9])
    assert priority_order(ids, sims, "prototypical").tolist() == [2, 1, 0]
    assert priority_order(ids, sims, "hardest").tolist() == [1, 0, 2]
    assert priority_order(ids, sims, "smallest_id").tolist() == [1, 0, 2]


def test_brute_force_reference_counts_pairs() -> None:
    vectors = unit(np.array([[1, 0], [1, 0.01], [0, 1]], dtype=np.float64))
    assert brute_force_pairs(vectors, 0.99) == {(0, 1)}
