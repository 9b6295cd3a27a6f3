"""Hard-negative selector (NGAME): epoch plans, curriculum, false-negative masks, mining."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from selectors_helpers import assert_deterministic, assert_valid_selection

from batchcraft.selectors import MissingColumnsError, Pool, get_selector
from batchcraft.selectors.balanced_clustering import balanced_clusters
from batchcraft.selectors.negative_mining import (
    false_negative_mask,
    mine_hard_negatives,
    top_negative_similarity,
)


def topical_pairs(rng: np.random.Generator, num_rows: int, num_labels: int = 40) -> Pool:
    """Anchors and positives around labels, labels around a few topics: hard negatives exist."""
    topics = rng.normal(size=(6, 16))
    label_centres = topics[rng.integers(0, 6, num_labels)] + 0.6 * rng.normal(size=(num_labels, 16))
    labels = rng.integers(0, num_labels, num_rows)
    anchors = label_centres[labels] + 0.5 * rng.normal(size=(num_rows, 16))
    positives = label_centres[labels] + 0.5 * rng.normal(size=(num_rows, 16))
    return Pool(embeddings=anchors, pair_embeddings=positives, labels=labels)


@pytest.mark.parametrize(
    ("seed", "num_rows", "batch_size", "epoch"),
    itertools.product(range(3), [1, 37, 300], [1, 16, 64], [0, 5]),
)
def test_every_row_exactly_once_per_epoch(
    seed: int, num_rows: int, batch_size: int, epoch: int
) -> None:
    pool = topical_pairs(np.random.default_rng(seed), num_rows)
    selector = get_selector("hard_negative", cluster_size=8)
    plan = selector.plan_epoch(pool, batch_size, np.random.default_rng(seed), epoch=epoch)
    rows = np.concatenate(plan)
    assert sorted(rows.tolist()) == list(range(num_rows))
    assert all(len(batch) == batch_size for batch in plan[:-1])
    again = selector.plan_epoch(pool, batch_size, np.random.default_rng(seed), epoch=epoch)
    assert all(np.array_equal(first, second) for first, second in zip(plan, again, strict=True))


@pytest.mark.parametrize(
    ("seed", "pool_size", "batch_size"), itertools.product(range(3), [1, 40, 200], [1, 8, 32])
)
def test_hard_negative_select_invariants(seed: int, pool_size: int, batch_size: int) -> None:
    pool = topical_pairs(np.random.default_rng(seed), pool_size)
    selector = get_selector("hard_negative", cluster_size=8)
    selection = selector.select(pool, batch_size, np.random.default_rng(seed))
    assert_valid_selection(selection, pool_size, batch_size)
    mask = selection.info["false_negative_mask"]
    assert mask.shape == (len(selection), len(selection))
    assert_deterministic(selector, pool, batch_size, seed)


def test_a_planned_batch_is_kept_whole_and_in_order() -> None:
    pool = topical_pairs(np.random.default_rng(0), 24)
    selection = get_selector("hard_negative").select(pool, 24, np.random.default_rng(0))
    assert selection.indices.tolist() == list(range(24))


@pytest.mark.parametrize("seed", range(3))
def test_clustered_batches_have_harder_negatives_than_random(seed: int) -> None:
    rng = np.random.default_rng(seed)
    pool = topical_pairs(rng, 1024, num_labels=512)  # many labels, few anchors each, as in XC
    selector = get_selector("hard_negative", cluster_size=16, initial_cluster_size=16)

    def mean_hardness(plan: list[np.ndarray]) -> float:
        return float(
            np.mean(
                [
                    selector.select(pool.take(batch), len(batch), rng).info[
                        "top_negative_similarity"
                    ]
                    for batch in plan
                ]
            )
        )

    clustered = mean_hardness(selector.plan_epoch(pool, 64, rng))
    random_batches = mean_hardness(
        get_selector("hard_negative", cluster_size=1).plan_epoch(pool, 64, rng)
    )
    assert clustered > 1.1 * random_batches


def test_every_accidental_positive_is_masked() -> None:
    pool = topical_pairs(np.random.default_rng(0), 200, num_labels=10)
    selection = get_selector("hard_negative", cluster_size=16).select(
        pool.take(np.arange(64)), 64, np.random.default_rng(0)
    )
    labels = pool.labels[:64]
    same_label = (labels[:, None] == labels[None, :]) & ~np.eye(64, dtype=bool)
    mask = selection.info["false_negative_mask"]
    assert (mask[same_label]).all()
    assert not mask.diagonal().any()
    assert selection.info["accidental_positives"] == int(same_label.sum())


def test_same_positive_text_is_masked_without_labels() -> None:
    positives = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    mask = false_negative_mask(None, np.eye(3, 2), positives)
    assert mask.tolist() == [[False, True, False], [True, False, False], [False, False, False]]


def test_with_anchors_only_the_mask_covers_the_batch_and_masks_nothing() -> None:
    anchors = np.random.default_rng(0).normal(size=(5, 4))
    mask = false_negative_mask(None, anchors, None)
    assert mask.shape == (5, 5) and not mask.any()
    assert 0 < top_negative_similarity(anchors, anchors, mask, top=2) <= 1


def test_margin_guard_masks_negatives_scoring_like_the_positive() -> None:
    anchors = np.array([[1.0, 0.0], [0.0, 1.0]])
    positives = np.array([[0.8, 0.6], [0.79, 0.61]])  # anchor 0 scores both alike
    assert not false_negative_mask(None, anchors, positives, margin=None)[0, 1]
    assert false_negative_mask(None, anchors, positives, margin=0.05)[0, 1]


def test_curriculum_grows_the_cluster_size() -> None:
    selector = get_selector(
        "hard_negative", initial_cluster_size=1, cluster_size=16, doubling_every=2
    )
    assert [selector.cluster_size_at(epoch) for epoch in range(0, 12, 2)] == [1, 2, 4, 8, 16, 16]


def test_clusters_are_balanced_and_similar() -> None:
    pool = topical_pairs(np.random.default_rng(0), 512, num_labels=32)
    clusters = balanced_clusters(pool.embeddings, 16, np.random.default_rng(0))
    sizes = [len(cluster) for cluster in clusters]
    assert min(sizes) > 8 and max(sizes) <= 16
    purity = np.mean(
        [np.bincount(pool.labels[cluster]).max() / len(cluster) for cluster in clusters]
    )
    assert purity > 0.5  # chance is about 1/32


def test_learner_embeddings_drive_the_clustering() -> None:
    rng = np.random.default_rng(0)
    pool = topical_pairs(rng, 128)
    learner = Pool(embeddings=pool.embeddings, learner_embeddings=rng.normal(size=(128, 16)))
    plan_dataset = get_selector(
        "hard_negative", cluster_size=16, initial_cluster_size=16
    ).plan_epoch(pool, 32, np.random.default_rng(1))
    plan_learner = get_selector(
        "hard_negative", cluster_size=16, initial_cluster_size=16
    ).plan_epoch(learner, 32, np.random.default_rng(1))
    assert any(not np.array_equal(a, b) for a, b in zip(plan_dataset, plan_learner, strict=True))


def test_mined_negatives_skip_positives_and_false_negatives() -> None:
    pool = topical_pairs(np.random.default_rng(0), 300, num_labels=30)
    mined = mine_hard_negatives(
        pool.embeddings, pool.pair_embeddings, 5, skip_top=1, margin=0.0, labels=pool.labels
    )
    assert mined.shape == (300, 5)
    valid = mined >= 0
    assert valid.mean() > 0.95
    rows = np.repeat(np.arange(300)[:, None], 5, axis=1)
    assert not (mined[valid] == rows[valid]).any()
    assert not (pool.labels[mined[valid]] == pool.labels[rows[valid]]).any()
    unit = lambda m: m / np.linalg.norm(m, axis=1, keepdims=True)  # noqa: E731
    anchors, positives = unit(pool.embeddings), unit(pool.pair_embeddings)
    own = (anchors * positives).sum(1)
    scores = (anchors[rows[valid]] * positives[mined[valid]]).sum(1)
    assert (scores < own[rows[valid]]).all()


def test_mine_negatives_through_the_selector() -> None:
    pool = topical_pairs(np.random.default_rng(0), 100)
    mined = get_selector("hard_negative", num_mined_negatives=3).mine_negatives(
        pool, np.array([4, 7])
    )
    assert mined.shape == (2, 3)


def test_hard_negative_needs_embeddings() -> None:
    with pytest.raises(MissingColumnsError, match="embeddings"):
        get_selector("hard_negative").plan_epoch(Pool(ids=["a"]), 1, np.random.default_rng(0))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"cluster_size": 0}, "cluster_size"),
        ({"initial_cluster_size": 32, "cluster_size": 16}, "initial_cluster_size"),
        ({"doubling_every": 0}, "doubling_every"),
        ({"num_mined_negatives": -1}, "num_mined_negatives"),
    ],
)
def test_hard_negative_rejects_bad_parameters(params: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        get_selector("hard_negative", **params)


def reference_balanced_clusters(
    embeddings: np.ndarray, cluster_size: int, rng: np.random.Generator, iterations: int = 4
) -> list[np.ndarray]:
    """The recursion one node at a time (depth first, left first): the specification."""
    if cluster_size == 1:
        return [np.array([row]) for row in range(len(embeddings))]
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    unit = (embeddings / np.maximum(norms, 1e-12)).astype(np.float32)
    pending, finished = [np.arange(len(embeddings))], []
    while pending:
        members = pending.pop()
        if len(members) <= cluster_size:
            finished.append(members)
            continue
        vectors = unit[members]
        centroids = vectors[rng.choice(len(members), 2, replace=False)].copy()
        order = np.arange(len(members))
        for _ in range(iterations):
            order = np.argsort(-(vectors @ (centroids[0] - centroids[1])), kind="stable")
            for side, part in enumerate(np.split(order, [len(members) // 2])):
                mean = vectors[part].sum(axis=0)
                norm = float(np.linalg.norm(mean))
                if norm > 1e-12:
                    centroids[side] = mean / norm
        left, right = np.split(order, [len(members) // 2])
        pending.extend([members[right], members[left]])
    return finished


@pytest.mark.parametrize(
    ("seed", "num_rows", "dim", "cluster_size", "iterations"),
    [
        *itertools.product(range(2), [0, 1, 2, 7, 100, 257], [1, 3, 16], [1, 2, 5, 16], [4]),
        *itertools.product(range(2), [300, 5000], [8, 64], [2, 3, 32], [0, 1, 4]),
    ],
)
def test_level_by_level_clustering_equals_the_recursion(
    seed: int, num_rows: int, dim: int, cluster_size: int, iterations: int
) -> None:
    """Splitting a tree level at a time must give the recursion's clusters, bit for bit."""
    rng = np.random.default_rng(seed)
    embeddings = rng.normal(size=(num_rows, dim)).astype(np.float32)
    embeddings[: num_rows // 5] = embeddings[:1]  # duplicates: ties in every sort
    fast_rng, reference_rng = np.random.default_rng(seed), np.random.default_rng(seed)
    clusters = balanced_clusters(embeddings, cluster_size, fast_rng, iterations)
    expected = reference_balanced_clusters(embeddings, cluster_size, reference_rng, iterations)
    assert [c.tolist() for c in clusters] == [c.tolist() for c in expected]
    assert fast_rng.random() == reference_rng.random()  # the same draws were consumed


def test_in_batch_scores_match_a_full_sort() -> None:
    pool = topical_pairs(np.random.default_rng(3), 50)
    assert pool.embeddings is not None and pool.pair_embeddings is not None
    mask = false_negative_mask(pool.labels, pool.embeddings, pool.pair_embeddings, margin=0.1)
    anchors = pool.embeddings / np.linalg.norm(pool.embeddings, axis=1, keepdims=True)
    positives = pool.pair_embeddings / np.linalg.norm(pool.pair_embeddings, axis=1, keepdims=True)
    scores = anchors @ positives.T
    scores[mask] = -np.inf
    np.fill_diagonal(scores, -np.inf)
    hardest = -np.sort(-scores, axis=1)[:, :10]
    expected = np.nanmean(np.where(np.isfinite(hardest), hardest, np.nan))
    found = top_negative_similarity(pool.embeddings, pool.pair_embeddings, mask, 10)
    assert found == pytest.approx(expected, rel=1e-6)
