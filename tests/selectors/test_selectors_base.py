"""The registry, Pool and Selection contract, and the uniform baseline."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
from selectors_helpers import assert_deterministic, assert_valid_selection, unit_rows

from batchcraft.errors import ConfigError
from batchcraft.selectors import (
    SELECTORS,
    EpochPlanner,
    MissingColumnsError,
    Pool,
    Selection,
    Selector,
    get_selector,
)


def test_unknown_selector_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown selector 'nope'") as error:
        get_selector("nope")
    for name in SELECTORS:
        assert name in str(error.value)


def test_unknown_parameter_names_valid_ones() -> None:
    with pytest.raises(ConfigError, match="bogus"):
        get_selector("uniform", bogus=1)


@pytest.mark.parametrize("name", sorted(SELECTORS))
def test_every_registered_selector_follows_the_protocol(name: str) -> None:
    selector = get_selector(name)
    assert isinstance(selector, Selector)
    assert isinstance(selector, EpochPlanner) == selector.epoch_level
    assert selector.name == name
    assert selector.pool_size(64) >= 64


def test_pool_rejects_misaligned_columns() -> None:
    with pytest.raises(ValueError, match="same number of rows"):
        Pool(embeddings=np.zeros((3, 2)), sources=["a", "b"])


def test_pool_take_keeps_rows_aligned() -> None:
    pool = Pool(
        ids=np.array(["a", "b", "c"]),
        embeddings=np.arange(6).reshape(3, 2),
        concepts=[["x"], ["y"], []],
        learner_logit_scale=5.0,
    )
    subset = pool.take(np.array([2, 0]))
    assert list(subset.ids) == ["c", "a"]
    np.testing.assert_array_equal(subset.embeddings, [[4, 5], [0, 1]])
    assert subset.concepts == [[], ["x"]]
    assert subset.learner_logit_scale == 5.0


def test_pool_from_arrow_maps_dataset_columns() -> None:
    embedding_type = pa.list_(pa.float32(), 2)
    table = pa.table(
        {
            "id": ["a", "b"],
            "embedding": pa.array([[1.0, 0.0], [0.0, 1.0]], type=embedding_type),
            "concepts": [["cat"], None],
            "source": ["web", "books"],
            "ref_loss": pa.array([0.5, 1.5], type=pa.float32()),
        }
    )
    pool = Pool.from_arrow(table, learner_losses=np.array([1.0, 2.0]))
    assert len(pool) == 2
    np.testing.assert_array_equal(pool.embeddings, np.eye(2))
    assert pool.concepts == [["cat"], []]
    np.testing.assert_allclose(pool.learner_losses - pool.reference_losses, [0.5, 0.5])


def test_pool_from_arrow_rejects_unknown_feedback() -> None:
    with pytest.raises(ValueError, match="learner_loss"):
        Pool.from_arrow(pa.table({"id": ["a"]}), learner_loss=[1.0])


def test_selection_metrics_are_json_serialisable() -> None:
    selection = Selection(np.arange(2), None, {"entropy": 1.5, "mask": np.eye(2, dtype=bool)})
    assert json.loads(json.dumps(selection.metrics())) == {"entropy": 1.5}


def test_missing_column_error_names_the_columns() -> None:
    class NeedsEmbeddings(SELECTORS["uniform"]):  # type: ignore[misc, valid-type]
        @property
        def required_columns(self) -> frozenset[str]:
            return frozenset({"embeddings", "sources"})

    with pytest.raises(MissingColumnsError, match=r"\['embeddings', 'sources'\]"):
        NeedsEmbeddings().select(Pool(ids=["a"]), 1, np.random.default_rng(0))


@pytest.mark.parametrize("batch_size", [0, -3, 2.5, True])
def test_bad_batch_size_is_rejected(batch_size: object) -> None:
    with pytest.raises(ConfigError, match="batch_size"):
        get_selector("uniform").select(Pool(ids=["a"]), batch_size, np.random.default_rng(0))  # type: ignore[arg-type]


def test_rng_must_be_a_generator() -> None:
    with pytest.raises(ConfigError, match="Generator"):
        get_selector("uniform").select(Pool(ids=["a"]), 1, 0)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("pool_size", [1, 7, 64, 300])
def test_uniform_invariants(seed: int, pool_size: int) -> None:
    pool = Pool(embeddings=unit_rows(np.random.default_rng(seed), pool_size, 4))
    selector = get_selector("uniform")
    for batch_size in (1, 16, 64):
        selection = selector.select(pool, batch_size, np.random.default_rng(seed))
        assert_valid_selection(selection, pool_size, batch_size)
        assert selection.weights is None
    assert_deterministic(selector, pool, 16, seed)


def test_uniform_covers_the_pool_when_pool_equals_batch() -> None:
    selection = get_selector("uniform").select(
        Pool(ids=np.arange(10)), 10, np.random.default_rng(3)
    )
    assert sorted(selection.indices.tolist()) == list(range(10))


def test_uniform_is_not_biased_to_the_front_of_the_pool() -> None:
    rng = np.random.default_rng(0)
    counts = np.zeros(100)
    for _ in range(200):
        counts[get_selector("uniform").select(Pool(ids=np.arange(100)), 10, rng).indices] += 1
    assert counts[:50].sum() == pytest.approx(counts[50:].sum(), rel=0.15)
