"""Coreset selector (CREST + CoLM) and its facility-location core."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from selectors_helpers import assert_deterministic, assert_valid_selection

from batchcraft.selectors import MissingColumnsError, Pool, get_selector
from batchcraft.selectors.base import sorted_unique
from batchcraft.selectors.facility_location import distance_similarity, facility_location


def clustered_rows(rng: np.random.Generator, num_rows: int, num_clusters: int = 8) -> np.ndarray:
    centres = rng.normal(size=(num_clusters, 6)) * 4
    return centres[rng.integers(0, num_clusters, num_rows)] + rng.normal(size=(num_rows, 6))


def brute_force_greedy(similarity: np.ndarray, num_medoids: int) -> list[int]:
    coverage = np.zeros(len(similarity))
    picks: list[int] = []
    for _ in range(num_medoids):
        gains = np.maximum(similarity - coverage[:, None], 0).sum(axis=0)
        gains[picks] = -1
        picks.append(int(np.argmax(gains)))
        coverage = np.maximum(coverage, similarity[:, picks[-1]])
    return picks


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("block_size", [1, 4, 32])
def test_lazy_greedy_matches_plain_greedy(seed: int, block_size: int) -> None:
    rng = np.random.default_rng(seed)
    similarity = distance_similarity(clustered_rows(rng, 90)).astype(np.float64)
    result = facility_location(similarity, 12, block_size=block_size)
    assert result.medoids.tolist() == brute_force_greedy(similarity, 12)
    assert result.gain_evaluations < 90 * 12  # lazy: fewer evaluations than plain greedy


def test_facility_location_objective_and_assignment_agree() -> None:
    similarity = distance_similarity(clustered_rows(np.random.default_rng(1), 60))
    result = facility_location(similarity, 7)
    best = similarity[:, result.medoids].max(axis=1)
    np.testing.assert_allclose(result.objective, best.sum(), rtol=1e-5)
    chosen = similarity[np.arange(60), result.medoids[result.assignment]]
    np.testing.assert_allclose(chosen, best, rtol=1e-6)


@pytest.mark.parametrize(
    ("seed", "pool_size", "batch_size"), itertools.product(range(3), [5, 40, 300], [1, 8, 32])
)
def test_coreset_invariants(seed: int, pool_size: int, batch_size: int) -> None:
    rng = np.random.default_rng(seed)
    pool = Pool(embeddings=clustered_rows(rng, pool_size))
    selector = get_selector("coreset", pool_multiplier=4)
    selection = selector.select(pool, batch_size, np.random.default_rng(seed))
    assert_valid_selection(selection, pool_size, batch_size)
    assert selection.weights is not None
    assert (selection.weights >= 1).all()
    assert selection.weights.sum() == pytest.approx(pool_size)
    assert_deterministic(selector, pool, batch_size, seed)


def test_weights_count_the_rows_each_medoid_represents() -> None:
    rng = np.random.default_rng(0)
    sizes = [50, 30, 20]
    rows = np.concatenate([np.full((size, 2), 100.0 * group) for group, size in enumerate(sizes)])
    rows += rng.normal(scale=0.01, size=rows.shape)
    selection = get_selector("coreset").select(Pool(embeddings=rows), 3, rng)
    assert selection.weights is not None
    groups = (selection.indices >= 50).astype(int) + (selection.indices >= 80)
    assert dict(zip(groups.tolist(), selection.weights.tolist(), strict=True)) == {
        0: 50,
        1: 30,
        2: 20,
    }


def test_weighted_coreset_gradient_beats_random_batch() -> None:
    rng = np.random.default_rng(0)
    gradients = clustered_rows(rng, 400, num_clusters=12)
    target = gradients.mean(axis=0)
    selection = get_selector("coreset").select(Pool(gradient_sketches=gradients), 24, rng)
    assert selection.weights is not None
    coreset_mean = (selection.weights[:, None] * gradients[selection.indices]).sum(0) / 400
    random_errors = [
        np.linalg.norm(gradients[rng.choice(400, 24, replace=False)].mean(0) - target)
        for _ in range(50)
    ]
    assert np.linalg.norm(coreset_mean - target) < np.median(random_errors)


@pytest.mark.parametrize("seed", range(5))
def test_small_sources_are_always_kept(seed: int) -> None:
    rng = np.random.default_rng(seed)
    sources = np.array(["web"] * 300 + ["code"] * 12 + ["math"] * 7 + ["legal"] * 3)
    order = rng.permutation(len(sources))
    pool = Pool(embeddings=clustered_rows(rng, len(sources)), sources=sources[order])
    selection = get_selector("coreset", small_source_share=0.1).select(pool, 40, rng)
    small = np.flatnonzero(pool.sources != "web")
    assert set(small.tolist()) <= set(selection.indices.tolist())
    assert selection.weights is not None
    assert selection.weights.sum() == pytest.approx(len(sources))
    assert (selection.weights[np.isin(selection.indices, small)] == 1).all()


def test_too_many_small_rows_falls_back_to_one_coreset() -> None:
    pool = Pool(
        embeddings=np.random.default_rng(0).normal(size=(30, 3)),
        sources=[str(i) for i in range(30)],
    )
    selection = get_selector("coreset", small_source_share=0.5).select(
        pool, 5, np.random.default_rng(0)
    )
    assert len(selection) == 5
    assert selection.info["small_sources_all_kept"] is False
    assert selection.weights is not None and selection.weights.sum() == pytest.approx(30)


def test_adam_normalisation_changes_the_geometry() -> None:
    rng = np.random.default_rng(0)
    sketches = rng.normal(size=(100, 4)) * np.array([100.0, 1.0, 1.0, 1.0])
    moments = {
        "gradient_first_moment": np.zeros(4),
        "gradient_second_moment": np.array([1e4, 1, 1, 1]),
    }
    plain = get_selector("coreset").select(
        Pool(gradient_sketches=sketches), 10, np.random.default_rng(0)
    )
    normalised = get_selector("coreset").select(
        Pool(gradient_sketches=sketches, **moments), 10, np.random.default_rng(0)
    )
    assert normalised.info["features"] == "adam_normalised_gradient_sketches"
    assert set(plain.indices.tolist()) != set(normalised.indices.tolist())


def test_coreset_needs_embeddings_or_sketches() -> None:
    with pytest.raises(MissingColumnsError, match="embeddings or gradient_sketches"):
        get_selector("coreset").select(Pool(ids=["a"]), 1, np.random.default_rng(0))
    with pytest.raises(MissingColumnsError, match="gradient_sketches"):
        get_selector("coreset", features="gradient_sketches").select(
            Pool(embeddings=np.zeros((2, 2))), 1, np.random.default_rng(0)
        )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"pool_multiplier": 0.5}, "pool_multiplier"),
        ({"small_source_share": 1.0}, "small_source_share"),
        ({"features": "labels"}, "features"),
        ({"sketch_dimensions": 0}, "sketch_dimensions"),
    ],
)
def test_coreset_rejects_bad_parameters(params: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        get_selector("coreset", **params)


def test_pool_size_is_a_multiple_of_the_batch() -> None:
    assert get_selector("coreset", pool_multiplier=10).pool_size(128) == 1280


@pytest.mark.parametrize("seed", range(3))
def test_stochastic_greedy_keeps_the_objective(seed: int) -> None:
    similarity = distance_similarity(
        clustered_rows(np.random.default_rng(seed), 400, num_clusters=30)
    )
    exact = facility_location(similarity, 40)
    stochastic = facility_location(similarity, 40, epsilon=0.01, rng=np.random.default_rng(seed))
    assert stochastic.objective >= 0.98 * exact.objective
    assert len(set(stochastic.medoids.tolist())) == 40


def test_stochastic_greedy_needs_an_rng_and_a_valid_epsilon() -> None:
    similarity = distance_similarity(np.eye(5))
    with pytest.raises(ValueError, match="epsilon"):
        facility_location(similarity, 2, epsilon=0.01)
    with pytest.raises(ValueError, match="epsilon"):
        facility_location(similarity, 2, epsilon=1.5, rng=np.random.default_rng(0))


@pytest.mark.parametrize("seed", range(5))
def test_sorted_unique_is_numpy_unique(seed: int) -> None:
    values = np.random.default_rng(seed).integers(0, 30, size=seed * 10)
    np.testing.assert_array_equal(sorted_unique(values), np.unique(values))
