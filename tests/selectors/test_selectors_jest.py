"""JEST: pairwise sigmoid-loss learnability, chunked joint sampling, and the independent ablation."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from selectors_helpers import assert_deterministic, assert_valid_selection, unit_rows

from batchcraft.selectors import MissingColumnsError, Pool, get_selector
from batchcraft.selectors.jest_scoring import (
    LearnabilityScorer,
    SigmoidLossParameters,
    joint_sample,
)


@pytest.fixture(autouse=True)
def single_torch_thread() -> Iterator[None]:
    """Tiny matrices: one thread avoids OpenMP spin-waits when the CPUs are shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


TOWERS = ("learner_embeddings", "learner_pair_embeddings", "embeddings", "pair_embeddings")


def random_towers(rng: np.random.Generator, num_rows: int, dim: int = 8) -> dict[str, np.ndarray]:
    return {name: unit_rows(rng, num_rows, dim) for name in TOWERS}


def brute_force_learnability(
    towers: dict[str, np.ndarray], learner: tuple[float, float], reference: tuple[float, float]
) -> np.ndarray:
    def losses(images: np.ndarray, texts: np.ndarray, scale: float, bias: float) -> np.ndarray:
        logits = scale * images @ texts.T + bias
        labels = 2 * np.eye(len(images)) - 1
        return np.log1p(np.exp(-labels * logits))

    return losses(
        towers["learner_embeddings"], towers["learner_pair_embeddings"], *learner
    ) - losses(towers["embeddings"], towers["pair_embeddings"], *reference)


def planted_block_pool(
    rng: np.random.Generator, num_rows: int, block_rows: int
) -> tuple[Pool, np.ndarray]:
    """Rows whose only distinguishing feature is their pairwise terms.

    Every row's own pair is matched equally well by learner and reference, so
    the diagonal learnability is the same for all. The learner confuses the
    block's rows with each other (all near one direction), the reference does
    not: only the block's off-diagonal terms are learnable.
    """
    reference = unit_rows(rng, num_rows, 64)
    block = rng.choice(num_rows, block_rows, replace=False)
    learner = reference.copy()
    shared = unit_rows(rng, 1, 64)[0]
    learner[block] = shared + 0.05 * rng.normal(size=(block_rows, 64))
    pool = Pool(
        embeddings=reference,
        pair_embeddings=reference,
        learner_embeddings=learner,
        learner_pair_embeddings=learner,
        learner_logit_scale=20.0,
        learner_logit_bias=-10.0,
    )
    return pool, block


def test_scorer_matches_the_pairwise_sigmoid_loss_difference() -> None:
    towers = random_towers(np.random.default_rng(0), 30)
    heads = (SigmoidLossParameters(12.0, -8.0), SigmoidLossParameters(10.0, -10.0))
    scorer = LearnabilityScorer(tuple(towers[name] for name in TOWERS), heads)  # type: ignore[arg-type]
    expected = brute_force_learnability(towers, (12.0, -8.0), (10.0, -10.0))
    np.testing.assert_allclose(scorer.full().numpy(), expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(scorer.diagonal(), np.diag(expected), rtol=1e-4, atol=1e-4)
    chosen = np.array([3, 17, 5])
    expected_gain = expected[chosen].sum(0) + expected[:, chosen].sum(1)
    np.testing.assert_allclose(scorer.pair_gain(chosen), expected_gain, rtol=1e-4, atol=1e-3)
    rows = np.array([0, 5, 29])
    np.testing.assert_allclose(
        scorer.pair_gain(chosen, rows), expected_gain[rows], rtol=1e-4, atol=1e-3
    )


def test_never_scored_rows_contribute_zero_learnability() -> None:
    towers = random_towers(np.random.default_rng(1), 12)
    towers["learner_embeddings"][4] = np.nan
    heads = (SigmoidLossParameters(10.0, -10.0), SigmoidLossParameters(10.0, -10.0))
    matrix = LearnabilityScorer(tuple(towers[name] for name in TOWERS), heads).full().numpy()  # type: ignore[arg-type]
    assert np.isfinite(matrix).all()
    assert (matrix[4] == 0).all()
    assert (matrix[:, 4] != 0).any()  # row 4's text tower is still known


@pytest.mark.parametrize("name", ["jest", "jest_independent"])
@pytest.mark.parametrize(
    ("seed", "pool_size", "batch_size"), itertools.product(range(3), [1, 20, 160], [1, 7, 32])
)
def test_jest_invariants(name: str, seed: int, pool_size: int, batch_size: int) -> None:
    pool = Pool(**random_towers(np.random.default_rng(seed), pool_size))
    selector = get_selector(name)
    selection = selector.select(pool, batch_size, np.random.default_rng(seed))
    assert_valid_selection(selection, pool_size, batch_size)
    assert selection.info["scoring"] == "pairwise"
    assert_deterministic(selector, pool, batch_size, seed)


class MatrixScorer(LearnabilityScorer):
    """A scorer over an explicit learnability matrix."""

    def __init__(self, matrix: np.ndarray) -> None:
        self.matrix = matrix
        self.size = len(matrix)

    def diagonal(self) -> np.ndarray:
        return np.diag(self.matrix).astype(np.float64)

    def pair_gain(self, chosen: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        gain = self.matrix[chosen].sum(0) + self.matrix[:, chosen].sum(1)
        return gain if rows is None else gain[rows]


def test_joint_sampling_follows_the_conditional_learnability() -> None:
    matrix = np.zeros((6, 6))
    matrix[0, 0] = 50.0  # first pick, deterministically
    matrix[0, 4] = 50.0  # then only row 4 gains from row 0
    picks = joint_sample(MatrixScorer(matrix), 2, 2, np.random.default_rng(0))
    assert picks.tolist() == [0, 4]


@pytest.mark.parametrize("seed", range(3))
def test_joint_selection_recovers_a_block_learnable_only_through_pairs(seed: int) -> None:
    rng = np.random.default_rng(seed)
    pool, block = planted_block_pool(rng, 320, 64)  # super-batch 5× the batch, as in the paper
    joint = get_selector("jest").select(pool, 64, rng)
    independent = get_selector("jest_independent").select(pool, 64, rng)
    recovered = np.isin(joint.indices, block).mean()
    chance = 64 / 320
    assert recovered >= 0.7
    assert np.isin(independent.indices, block).mean() < chance + 0.2


def test_per_example_losses_give_independent_selection_and_say_so() -> None:
    learner = np.array([5.0, 1.0, 4.0, 1.0, 9.0])
    reference = np.array([0.0, 0.0, 0.5, 0.0, 8.9])  # row 4: high loss but not learnable
    pool = Pool(learner_losses=learner, reference_losses=reference)
    independent = get_selector("jest_independent").select(pool, 2, np.random.default_rng(0))
    assert sorted(independent.indices.tolist()) == [0, 2]
    joint = get_selector("jest", num_chunks=2).select(pool, 2, np.random.default_rng(0))
    assert joint.info["scoring"] == "per_example"
    assert joint.info["joint"] is False
    assert "RHO-LOSS" in joint.info["note"]


def test_learnability_favours_rows_the_learner_has_not_learned() -> None:
    rng = np.random.default_rng(0)
    towers = random_towers(rng, 200, 16)
    for name in ("pair_embeddings", "learner_embeddings", "learner_pair_embeddings"):
        towers[name] = towers["embeddings"].copy()  # both models match every pair...
    unlearned = np.arange(100, 200)
    towers["learner_pair_embeddings"][unlearned] = unit_rows(rng, 100, 16)  # ...but these
    selection = get_selector("jest").select(Pool(**towers), 40, rng)
    assert np.isin(selection.indices, unlearned).mean() > 0.9


def test_jest_missing_columns_names_both_options() -> None:
    with pytest.raises(MissingColumnsError, match="learner_pair_embeddings") as error:
        get_selector("jest").select(Pool(embeddings=np.zeros((2, 2))), 1, np.random.default_rng(0))
    assert "learner_losses" in str(error.value)
    with pytest.raises(MissingColumnsError, match="reference_losses"):
        get_selector("jest", scoring="per_example").select(
            Pool(learner_losses=[1.0]), 1, np.random.default_rng(0)
        )


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("jest", {"filter_ratio": 1.0}, "filter_ratio"),
        ("jest", {"num_chunks": 0}, "num_chunks"),
        ("jest", {"scoring": "loss"}, "scoring"),
        ("jest", {"temperature": 0.0}, "temperature"),
        ("jest", {"first_chunk": "best"}, "first_chunk"),
        ("jest_independent", {"method": "greedy"}, "method"),
    ],
)
def test_jest_rejects_bad_parameters(name: str, params: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        get_selector(name, **params)


def test_super_batch_size_follows_the_filter_ratio() -> None:
    assert get_selector("jest").pool_size(512) == 2560


def test_the_dense_learnability_of_a_small_pool_equals_the_lazy_blocks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import batchcraft.selectors.jest_scoring as scoring

    rng = np.random.default_rng(5)
    towers = tuple(rng.normal(size=(60, 8)).astype(np.float32) for _ in range(4))
    heads = (scoring.SigmoidLossParameters(10.0, -10.0), scoring.SigmoidLossParameters(8.0, -9.0))
    dense = scoring.LearnabilityScorer(towers, heads)
    assert dense.dense() is not None  # computed (and kept) under the default limit
    monkeypatch.setattr(scoring, "DENSE_LIMIT", 0)
    lazy = scoring.LearnabilityScorer(towers, heads)
    chosen, rows = np.array([3, 17, 42]), np.array([0, 3, 5, 42, 59])
    assert lazy.dense() is None
    np.testing.assert_allclose(
        dense.pair_gain(chosen, rows), lazy.pair_gain(chosen, rows), rtol=1e-4, atol=1e-4
    )
    np.testing.assert_allclose(
        dense.pair_gain(chosen), lazy.pair_gain(chosen), rtol=1e-4, atol=1e-4
    )
    assert dense.sub_batch_learnability(chosen) == pytest.approx(
        lazy.sub_batch_learnability(chosen), rel=1e-4
    )
