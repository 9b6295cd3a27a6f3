"""MinHash near dedup without Spark: shingles, signatures and the S-curve they follow,
candidate pairs of a bucket, exact Jaccard, and the keep rule within a duplicate group."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest
from minhash_helpers import jaccard, shingles

from batchcraft.errors import ConfigError
from batchcraft.pipeline.minhash.candidates import (
    BUCKET_CENTERS,
    MAX_PAIRWISE_BUCKET,
    bucket_pair_indices,
    pair_jaccard,
)
from batchcraft.pipeline.minhash.keep import keep_in_component
from batchcraft.pipeline.minhash.settings import MinhashSettings
from batchcraft.pipeline.minhash.shingles import shingle_sets
from batchcraft.pipeline.minhash.signatures import LshBands, MinHasher, band_keys, choose_bands
from batchcraft.synth.near_duplicates import NGRAM_SIZE as NGRAM
from batchcraft.synth.near_duplicates import PLANTED_SHAPES, planted_pair, random_text


def test_planted_pairs_have_the_jaccard_they_were_planted_at() -> None:
    rng = np.random.default_rng(0)
    for level in PLANTED_SHAPES:
        for number in range(4):
            left, right = planted_pair(rng, level, number)
            assert jaccard(left, right) == pytest.approx(level, abs=1e-12)
            sets = shingle_sets(pa.array([left]), NGRAM), shingle_sets(pa.array([right]), NGRAM)
            assert pair_jaccard(*sets)[0] == pytest.approx(level, abs=1e-12)


def test_shingles_ignore_case_punctuation_and_layout_but_not_word_order() -> None:
    texts = [
        "The cat sat on the mat, quietly.",
        "the CAT  sat on\nthe mat quietly!!",
        "The mat sat on the cat, quietly.",
        "Two words",
        "!!! ...",
        None,
    ]
    sets = shingle_sets(pa.array(texts), ngram_size=3)
    assert sets.sizes.tolist() == [5, 5, 5, 1, 0, 0]
    np.testing.assert_array_equal(sets.of(0), sets.of(1))
    assert len(np.intersect1d(sets.of(0), sets.of(2))) == 1  # only "sat on the" is shared


def test_a_pair_texts_shingles_count_apart_from_the_texts() -> None:
    text, pair = "alpha beta gamma delta epsilon", "zeta eta theta iota kappa"
    alone = shingle_sets(pa.array([text, pair]), NGRAM)
    paired = shingle_sets(pa.array([text]), NGRAM, pa.array([pair]))
    assert paired.sizes.tolist() == [2]
    assert alone.of(0)[0] in paired.of(0) and alone.of(1)[0] not in paired.of(0)


def test_shingle_hashes_are_the_same_in_every_process() -> None:
    script = (
        "import pyarrow as pa\n"
        "from batchcraft.pipeline.minhash.shingles import shingle_sets\n"
        "print(shingle_sets(pa.array(['Same text on every executor, whatever its seed']), 5)"
        ".hashes.tolist())\n"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1 and len(outputs.pop()) > 10  # Python's hash() differs per seed


def test_chosen_bands_detect_pairs_at_the_threshold_with_probability_at_least_095() -> None:
    for threshold in (0.5, 0.7, 0.8, 0.9):
        for num_perm in (64, 128, 256):
            bands = choose_bands(threshold, num_perm)
            assert bands.num_perm <= num_perm
            assert bands.detection_probability(threshold) >= 0.95
            assert bands.bands == num_perm // bands.rows  # every band the budget allows
            for rows in range(bands.rows + 1, num_perm + 1):  # no steeper curve would do
                widest = LshBands(num_perm // rows, rows) if num_perm >= rows else None
                assert widest is None or widest.detection_probability(threshold) < 0.95
    default = MinhashSettings().lsh
    assert (default.bands, default.rows) == (18, 7)
    assert default.detection_probability(0.8) > 0.98 and default.detection_probability(0.5) < 0.14


def test_a_budget_too_small_or_bands_that_do_not_fit_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="too small"):
        MinhashSettings(threshold=0.1, num_perm=4)
    with pytest.raises(ConfigError, match="fit in minhash_num_perm=64"):
        MinhashSettings(num_perm=64, bands=10, rows=7)
    assert MinhashSettings(bands=20, rows=5).lsh == LshBands(20, 5)


def test_a_signature_is_the_minimum_hash_whatever_batch_it_is_in() -> None:
    rng = np.random.default_rng(4)
    texts = [random_text(rng, int(n)) for n in rng.integers(1, 3000, 40)] + [None, "!"]
    hasher = MinHasher(128, seed=0)
    together = hasher.signatures(shingle_sets(pa.array(texts), NGRAM))
    alone = [
        hasher.signatures(shingle_sets(pa.array([text], pa.string()), NGRAM))[0] for text in texts
    ]
    np.testing.assert_array_equal(together, np.stack(alone))
    for row, text in enumerate(texts[:5]):
        hashes = shingle_sets(pa.array([text]), NGRAM).hashes[:, None]
        hashed = (hashes * hasher.multipliers + hasher.increments) >> np.uint64(32)
        np.testing.assert_array_equal(together[row], hashed.min(axis=0))
    assert (together[-2:] == np.iinfo(np.uint32).max).all()  # no words: no signature


def test_minhash_agreement_estimates_the_jaccard() -> None:
    rng = np.random.default_rng(1)
    pairs = [planted_pair(rng, 0.7, number) for number in range(300)]
    texts = pa.array([text for pair in pairs for text in pair])
    signatures = MinHasher(128, seed=0).signatures(shingle_sets(texts, NGRAM))
    agreement = (signatures[0::2] == signatures[1::2]).mean()
    assert agreement == pytest.approx(0.7, abs=0.01)  # 38,400 draws: sd 0.0023


@pytest.mark.parametrize("level", sorted(PLANTED_SHAPES))
def test_planted_pairs_become_candidates_at_the_rate_of_the_s_curve(level: float) -> None:
    """Each planted pair is a candidate with probability 1 - (1 - J^r)^b, independently
    of the others: the count is binomial, checked within four standard deviations."""
    rng = np.random.default_rng(int(level * 100))
    pairs = [planted_pair(rng, level, number) for number in range(400)]
    texts = pa.array([text for pair in pairs for text in pair])
    settings = MinhashSettings()
    keys = band_keys(
        MinHasher(settings.lsh.num_perm).signatures(shingle_sets(texts, NGRAM)), settings.lsh
    )
    found = int(np.any(keys[0::2] == keys[1::2], axis=1).sum())
    expected = float(settings.lsh.detection_probability(level))
    spread = 4 * math.sqrt(len(pairs) * expected * (1 - expected)) + 1
    assert abs(found - len(pairs) * expected) <= spread, (found, len(pairs) * expected)


def test_pair_jaccard_equals_python_sets() -> None:
    rng = np.random.default_rng(2)
    vocabulary = [f"v{i}" for i in range(12)]  # few words: many shared and repeated n-grams
    left = [" ".join(rng.choice(vocabulary, rng.integers(0, 30))) for _ in range(200)]
    right = [" ".join(rng.choice(vocabulary, rng.integers(0, 30))) for _ in range(200)]
    result = pair_jaccard(shingle_sets(pa.array(left), 2), shingle_sets(pa.array(right), 2))
    expected = []
    for a, b in zip(left, right, strict=True):
        sa, sb = shingles(a, 2), shingles(b, 2)
        expected.append(len(sa & sb) / len(sa | sb) if sa | sb else 0.0)
    np.testing.assert_allclose(result, expected, atol=1e-12)


def test_a_huge_bucket_yields_pairs_linear_in_its_size() -> None:
    left, right = bucket_pair_indices(MAX_PAIRWISE_BUCKET)
    assert len(left) == MAX_PAIRWISE_BUCKET * (MAX_PAIRWISE_BUCKET - 1) // 2
    size = 10_000
    left, right = bucket_pair_indices(size)
    assert len(left) < BUCKET_CENTERS * size
    assert (left < right).all() and (left < BUCKET_CENTERS).all()
    pairs = set(zip(left.tolist(), right.tolist(), strict=True))
    assert len(pairs) == len(left)  # no pair twice
    assert all((0, member) in pairs for member in range(1, size))  # everyone meets the first


def component(rows: list[tuple[str, str, float]], priority: dict[str, int]) -> pa.Table:
    return pa.table(
        {
            "u": [u for u, _, _ in rows],
            "v": [v for _, v, _ in rows],
            "jaccard": [j for _, _, j in rows],
            "u_priority": [priority[u] for u, _, _ in rows],
            "v_priority": [priority[v] for _, v, _ in rows],
        }
    )


def test_chain_keeps_a_and_c_and_removes_b_for_resembling_a() -> None:
    chain = [("a", "b", 0.85), ("b", "c", 0.85)]  # A≈B, B≈C, A≉C
    decisions = keep_in_component(component(chain, {"a": 0, "b": 0, "c": 0})).to_pylist()
    assert decisions == [{"id": "b", "dup_of": "a", "dup_jaccard": 0.85}]


def test_prototypical_keeps_the_row_most_similar_to_its_group() -> None:
    star = [("a", "b", 0.85), ("b", "c", 0.9), ("b", "d", 0.8)]
    scores = {"a": 850_000, "b": 2_550_000, "c": 900_000, "d": 800_000}
    removed = keep_in_component(component(star, {k: -v for k, v in scores.items()}))
    assert sorted(removed.column("id").to_pylist()) == ["a", "c", "d"]
    assert set(removed.column("dup_of").to_pylist()) == {"b"}


def test_a_removed_row_points_to_its_most_similar_kept_row_ties_to_the_earlier() -> None:
    rows = [("a", "z", 0.8), ("b", "z", 0.9), ("c", "z", 0.9)]
    removed = keep_in_component(component(rows, {"a": 0, "b": 0, "c": 0, "z": 0}))
    assert removed.to_pylist() == [{"id": "z", "dup_of": "b", "dup_jaccard": 0.9}]
