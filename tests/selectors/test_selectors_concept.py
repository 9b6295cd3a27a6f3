"""Concept selector (CABS DM and FM)."""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
import pytest
import scipy.sparse
from selectors_helpers import assert_deterministic, assert_valid_selection

from batchcraft.selectors import MissingColumnsError, Pool, get_selector
from batchcraft.selectors.concept_stats import ConceptRows
from batchcraft.selectors.encoded_concepts import EncodedConcepts


def zipf_concepts(
    rng: np.random.Generator, num_rows: int, num_concepts: int = 60
) -> list[list[str]]:
    shares = 1.0 / np.arange(1, num_concepts + 1) ** 1.1
    shares /= shares.sum()
    sizes = rng.integers(0, 4, num_rows)
    return [[f"c{c}" for c in rng.choice(num_concepts, size, p=shares)] for size in sizes]


def batch_counts(concepts: list[list[str]], indices: np.ndarray) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in indices.tolist():
        for name in set(concepts[row]):
            counts[name] = counts.get(name, 0) + 1
    return counts


@pytest.mark.parametrize("variant", ["diversity", "frequency"])
@pytest.mark.parametrize(
    ("seed", "pool_size", "batch_size"), itertools.product(range(3), [1, 30, 400], [1, 10, 80])
)
def test_concept_invariants(variant: str, seed: int, pool_size: int, batch_size: int) -> None:
    pool = Pool(concepts=zipf_concepts(np.random.default_rng(seed), pool_size))
    selector = get_selector("concept", variant=variant)
    selection = selector.select(pool, batch_size, np.random.default_rng(seed))
    assert_valid_selection(selection, pool_size, batch_size)
    assert selection.weights is None
    assert_deterministic(selector, pool, batch_size, seed)


@pytest.mark.parametrize("seed", range(4))
def test_diversity_respects_caps_while_eligible_rows_remain(seed: int) -> None:
    rng = np.random.default_rng(seed)
    concepts = [[f"c{c}" for c in rng.choice(40, 2, replace=False)] for _ in range(500)]
    batch_size = 50
    selection = get_selector("concept", cap_factor=1.5).select(
        Pool(concepts=concepts), batch_size, rng
    )
    assert selection.info["rows_over_cap"] == 0
    target = batch_size * 2 / 40
    assert max(batch_counts(concepts, selection.indices).values()) <= np.ceil(1.5 * target)


def test_over_cap_rows_only_when_the_head_concept_is_everywhere() -> None:
    concepts = [["head"]] * 95 + [["tail"]] * 5
    selection = get_selector("concept").select(
        Pool(concepts=concepts), 20, np.random.default_rng(0)
    )
    assert set(range(95, 100)) <= set(selection.indices.tolist())  # every tail row first
    assert selection.info["rows_over_cap"] == 20 - 5 - 10  # cap = target = 10 per concept


@pytest.mark.parametrize("seed", range(3))
def test_diversity_beats_uniform_on_long_tailed_concepts(seed: int) -> None:
    rng = np.random.default_rng(seed)
    pool = Pool(concepts=zipf_concepts(rng, 1000))
    diverse = get_selector("concept").select(pool, 200, rng)
    uniform = get_selector("uniform").select(pool, 200, rng)
    rows = ConceptRows.from_pool_column(pool.concepts)
    uniform_share = np.bincount(
        rows.concept_of[np.isin(rows.row_of, uniform.indices)], minlength=60
    )
    uniform_share = uniform_share[uniform_share > 0] / uniform_share.sum()
    uniform_entropy = -(uniform_share * np.log(uniform_share)).sum()
    assert diverse.info["concept_entropy"] > 1.1 * uniform_entropy


def test_frequency_takes_the_rows_with_most_concepts() -> None:
    concepts = [["a"], ["a", "b", "c"], [], ["b", "d"], ["a", "a", "a"]]
    selection = get_selector("concept", variant="frequency").select(
        Pool(concepts=concepts), 2, np.random.default_rng(0)
    )
    assert sorted(selection.indices.tolist()) == [1, 3]  # duplicates in a row count once


def test_target_distribution_steers_the_batch() -> None:
    concepts = [["cat"]] * 100 + [["dog"]] * 100
    selector = get_selector("concept", target_distribution={"cat": 3.0, "dog": 1.0}, cap_factor=1.0)
    selection = selector.select(Pool(concepts=concepts), 40, np.random.default_rng(0))
    counts = batch_counts(concepts, selection.indices)
    assert counts == {"cat": 30, "dog": 10}


def test_sparse_matrix_and_lists_give_the_same_batch() -> None:
    concepts = [
        [f"{c}" for c in sorted(set(row))]
        for row in np.random.default_rng(0).integers(0, 9, (120, 3)).tolist()
    ]
    matrix = scipy.sparse.lil_matrix((120, 9))
    for row, names in enumerate(concepts):
        for name in names:
            matrix[row, int(name)] = 1
    from_lists = ConceptRows.from_pool_column(concepts)
    from_matrix = ConceptRows.from_pool_column(matrix.tocsr())
    lists_named = [sorted(from_lists.vocabulary[c] for c in row) for row in from_lists.row_concepts]
    matrix_named = [
        sorted(from_matrix.vocabulary[c] for c in row) for row in from_matrix.row_concepts
    ]
    assert lists_named == matrix_named


def test_concept_selector_needs_concepts() -> None:
    with pytest.raises(MissingColumnsError, match="concepts"):
        get_selector("concept").select(Pool(ids=["a"]), 1, np.random.default_rng(0))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"filter_ratio": 1.0}, "filter_ratio"),
        ({"filter_ratio": -0.1}, "filter_ratio"),
        ({"cap_factor": 0.5}, "cap_factor"),
        ({"variant": "entropy"}, "variant"),
        ({"target_distribution": {"a": -1.0}}, "target_distribution"),
    ],
)
def test_concept_rejects_bad_parameters(params: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        get_selector("concept", **params)


def test_super_batch_follows_the_filter_ratio() -> None:
    assert get_selector("concept", filter_ratio=0.8).pool_size(1024) == 5120


def reference_diversity_greedy(
    rows: ConceptRows, targets: np.ndarray, caps: np.ndarray, batch_size: int, seed: int
) -> tuple[list[int], int]:
    """CABS-DM's block-wise lazy greedy, one row's key at a time: the specification."""
    rng = np.random.default_rng(seed)
    rarity = np.log1p(rows.num_rows / np.maximum(rows.concept_counts, 1))
    weight = np.where(targets > 0, rarity / np.maximum(targets, 1e-12), 0.0).tolist()
    random_scores = rng.random(rows.num_rows).tolist()
    counts, target, cap = [0.0] * len(targets), targets.tolist(), caps.astype(float).tolist()

    def key(row: int) -> float:
        concepts = rows.row_concepts[row]
        if any(counts[c] >= cap[c] for c in concepts):
            saturation = sum((counts[c] + 1.0) / cap[c] for c in concepts)
            return 4.0 + saturation / (1.0 + saturation)
        gain = sum(max(target[c] - counts[c], 0.0) * weight[c] for c in concepts)
        return 1.0 / (1.0 + gain) if gain > 1e-12 else 2.0 + random_scores[row]

    picked: list[int] = []
    over_cap = 0
    block = max(1, -(-batch_size // 8))
    while len(picked) < batch_size:
        keys = np.array([key(row) for row in range(rows.num_rows)])
        keys[picked] = np.inf
        size = min(block + 1, rows.num_rows)
        candidates = np.argpartition(keys, size - 1)[:size]
        candidates = candidates[np.argsort(keys[candidates], kind="stable")]
        threshold = keys[candidates[-1]] if size > block else np.inf
        for row in candidates[:block].tolist():
            fresh = key(row)
            if len(picked) == batch_size or (fresh > threshold and row != candidates[0]):
                continue
            picked.append(row)
            over_cap += fresh >= 4.0
            for concept in rows.row_concepts[row]:
                counts[concept] += 1.0
    return picked, over_cap


@pytest.mark.parametrize(
    ("seed", "kind", "pool_size", "batch_size", "cap_factor"),
    itertools.product(range(2), ["zipf", "few", "head"], [1, 30, 400], [1, 10, 80], [1.0, 2.0]),
)
def test_diversity_greedy_equals_the_row_at_a_time_greedy(
    seed: int, kind: str, pool_size: int, batch_size: int, cap_factor: float
) -> None:
    """Re-evaluating a block's keys together must pick what evaluating one row at a time does."""
    rng = np.random.default_rng(seed)
    concepts = {
        "zipf": lambda: zipf_concepts(rng, pool_size),
        "few": lambda: [[f"c{c}" for c in rng.choice(4, 2)] for _ in range(pool_size)],
        "head": lambda: [["head"]] * (pool_size - pool_size // 10) + [["tail"]] * (pool_size // 10),
    }[kind]()
    selector = get_selector("concept", cap_factor=cap_factor)
    selection = selector.select(Pool(concepts=concepts), batch_size, np.random.default_rng(seed))
    rows = ConceptRows.from_pool_column(concepts)
    targets = selector._targets(rows, min(batch_size, pool_size))
    caps = np.maximum(1, np.ceil(cap_factor * targets - 1e-9)).astype(np.int64)
    picked, over_cap = reference_diversity_greedy(
        rows, targets, caps, min(batch_size, pool_size), seed
    )
    assert selection.indices.tolist() == picked
    assert selection.info["rows_over_cap"] == over_cap


@pytest.mark.parametrize("seed", range(3))
def test_a_column_encoded_in_arrow_equals_its_lists_encoded(seed: int) -> None:
    """Null rows, null names and a sliced column (as a dataset's table may hold) included."""
    rng = np.random.default_rng(seed)
    names: list[str | None] = [f"c{c}" for c in range(12)] + [None]
    lists: list[list[str | None] | None] = [
        None if rng.random() < 0.1 else [names[c] for c in rng.integers(0, 13, rng.integers(0, 5))]
        for _ in range(300)
    ]
    column = pa.array(lists, pa.list_(pa.string())).slice(40, 200)
    from_arrow = EncodedConcepts.from_arrow(column)
    from_lists = EncodedConcepts.from_lists(lists[40:240])
    np.testing.assert_array_equal(from_arrow.starts, from_lists.starts)
    np.testing.assert_array_equal(from_arrow.codes, from_lists.codes)
    assert from_arrow.names == from_lists.names


@pytest.mark.parametrize("seed", range(3))
def test_encoded_concepts_gather_like_the_lists(seed: int) -> None:
    rng = np.random.default_rng(seed)
    names = [f"c{c}" for c in range(12)]
    lists: list[list[str] | None] = [
        None if rng.random() < 0.1 else [names[c] for c in rng.integers(0, 12, rng.integers(0, 5))]
        for _ in range(200)
    ]
    encoded = EncodedConcepts.from_lists(lists)
    positions = rng.choice(200, 60, replace=False)
    gathered = encoded[positions]
    assert [gathered[row] for row in range(len(gathered))] == [
        lists[position] or [] for position in positions.tolist()
    ]
    from_encoded = ConceptRows.from_pool_column(gathered)
    from_lists = ConceptRows.from_pool_column([lists[position] for position in positions])
    assert from_encoded.vocabulary == from_lists.vocabulary  # first-appearance order
    np.testing.assert_array_equal(from_encoded.row_of, from_lists.row_of)
    np.testing.assert_array_equal(from_encoded.concept_of, from_lists.concept_of)
    selector = get_selector("concept")
    assert (
        selector.select(Pool(concepts=gathered), 20, np.random.default_rng(seed)).metrics()
        == selector.select(
            Pool(concepts=[lists[p] or [] for p in positions]), 20, np.random.default_rng(seed)
        ).metrics()
    )
