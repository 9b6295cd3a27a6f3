"""Reference losses of pairs (JEST's reference model from the curation embeddings), without
Spark: the SigLIP sigmoid loss of each pair against negatives drawn from the data."""

from __future__ import annotations

import inspect

import numpy as np
import pyarrow as pa
import pytest

from batchcraft.dataset.arrays import to_list_array
from batchcraft.pipeline.config import CurateConfig
from batchcraft.pipeline.scores.pairwise import (
    PairScoring,
    draw_negatives,
    group_reference_losses,
    pair_sigmoid_losses,
    softplus,
)


def paired_rows(count: int, dim: int = 32, noise: float = 0.3, seed: int = 0) -> tuple:
    """Texts and pairs close to them (matched pairs), both unit norm."""
    rng = np.random.default_rng(seed)
    texts = rng.normal(size=(count, dim))
    pairs = texts + noise * rng.normal(size=(count, dim))
    unit = lambda m: m / np.linalg.norm(m, axis=1, keepdims=True)  # noqa: E731
    return unit(texts).astype(np.float32), unit(pairs).astype(np.float32)


def test_a_matched_pair_has_a_lower_loss_than_the_same_row_with_another_rows_pair() -> None:
    texts, pairs = paired_rows(200)
    negatives = draw_negatives(200, 63, np.random.default_rng(1))
    matched = pair_sigmoid_losses(texts, pairs, negatives, 10.0, -10.0)
    swapped_pairs = np.roll(pairs, 1, axis=0)  # each row gets its neighbour's pair
    swapped = pair_sigmoid_losses(texts, swapped_pairs, negatives, 10.0, -10.0)
    assert matched.dtype == np.float32
    assert (matched < swapped).all()


def test_the_loss_is_the_pairs_term_plus_the_mean_of_the_negatives_terms() -> None:
    texts, pairs = paired_rows(6, dim=4)
    negatives = draw_negatives(6, 3, np.random.default_rng(2))
    found = pair_sigmoid_losses(texts, pairs, negatives, 7.0, -3.0)
    for row in range(6):
        own = softplus(-(7.0 * texts[row] @ pairs[row] - 3.0))
        others = [softplus(7.0 * texts[row] @ pairs[j] - 3.0) for j in negatives[row]]
        assert found[row] == pytest.approx(own + np.mean(others), rel=1e-5)
    alone = pair_sigmoid_losses(texts[:1], pairs[:1], np.empty((1, 0), np.int64), 7.0, -3.0)
    assert alone[0] == pytest.approx(softplus(-(7.0 * texts[0] @ pairs[0] - 3.0)), rel=1e-5)


@pytest.mark.parametrize(("rows", "wanted"), [(1, 4), (2, 4), (10, 4), (300, 255), (50, 255)])
def test_negatives_are_distinct_other_rows_each_used_as_often(rows: int, wanted: int) -> None:
    negatives = draw_negatives(rows, wanted, np.random.default_rng(rows))
    count = min(wanted, rows - 1)
    assert negatives.shape == (rows, count)
    if count:
        assert not (negatives == np.arange(rows)[:, None]).any(), "a row is no negative of itself"
        assert all(len(set(row)) == count for row in negatives.tolist())
        assert (np.bincount(negatives.ravel(), minlength=rows) == count).all()
    again = draw_negatives(rows, wanted, np.random.default_rng(rows))
    assert np.array_equal(negatives, again), "the seed decides the draw"


def test_a_groups_losses_do_not_depend_on_the_order_its_rows_arrive_in() -> None:
    texts, pairs = paired_rows(50, dim=8)
    ids = [f"row-{i:02d}" for i in range(50)]
    table = pa.table(
        {"id": ids, "embedding": to_list_array(texts), "pair_embedding": to_list_array(pairs)}
    )
    scoring = PairScoring(10.0, -10.0, 16, seed=3)
    first = group_reference_losses(table, scoring, group=0).to_pylist()
    shuffled = table.take(np.random.default_rng(0).permutation(50))
    assert group_reference_losses(shuffled, scoring, group=0).to_pylist() == first
    other_seed = group_reference_losses(table, PairScoring(10.0, -10.0, 16, seed=4), group=0)
    assert other_seed.to_pylist() != first
    assert [row["id"] for row in first] == sorted(ids)


def test_the_defaults_are_those_of_the_jest_selectors_reference_model() -> None:
    from batchcraft.selectors.jest import JestSelector

    defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(JestSelector).parameters.items()
    }
    config = CurateConfig(inputs=("x",), out="o")
    assert config.reference_logit_scale == defaults["reference_logit_scale"] == 10.0
    assert config.reference_logit_bias == defaults["reference_logit_bias"] == -10.0
