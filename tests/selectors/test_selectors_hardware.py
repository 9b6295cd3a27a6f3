"""Where coreset's similarity and JEST's learnability are computed: bf16 where it is
fast, within 1% of fp32's objective; CUDA asked for without a GPU is a clear error."""

from __future__ import annotations

import numpy as np
import pytest

from batchcraft.errors import ConfigError
from batchcraft.selectors import get_selector, hardware
from batchcraft.selectors.facility_location import distance_similarity, facility_location
from batchcraft.selectors.jest import JestSelector
from batchcraft.selectors.pool import Pool

torch = pytest.importorskip("torch")


def clustered(rows: int = 1024, dim: int = 96, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, dim))
    points = centres[rng.integers(0, 40, rows)] + 0.5 * rng.normal(size=(rows, dim))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def test_bf16_products_keep_the_facility_location_objective_within_one_percent() -> None:
    points = clustered()
    exact = distance_similarity(points, "cpu", "fp32")
    low = distance_similarity(points, "cpu", "bf16")
    assert not np.array_equal(exact, low)  # it did compute in bf16
    fp32 = facility_location(exact, 100, rng=np.random.default_rng(0))
    bf16 = facility_location(low, 100, rng=np.random.default_rng(0))
    picked_by_bf16 = exact[:, bf16.medoids].max(axis=1).sum()  # judged on fp32 similarity
    assert picked_by_bf16 >= 0.99 * fp32.objective  # measured 0.9999 on 2,560-row pools


def test_auto_precision_is_bf16_only_where_amx_multiplies_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    points = clustered(rows=300)
    fp32 = distance_similarity(points, "cpu", "fp32")
    monkeypatch.setattr(hardware, "cpu_has_amx", lambda: False)
    np.testing.assert_array_equal(distance_similarity(points, "auto", "auto"), fp32)
    monkeypatch.setattr(hardware, "cpu_has_amx", lambda: True)
    np.testing.assert_array_equal(
        distance_similarity(points, "auto", "auto"), distance_similarity(points, "cpu", "bf16")
    )


def test_the_fp32_similarity_is_the_euclidean_one() -> None:
    points = clustered(rows=64, dim=8)
    distances = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=2)
    np.testing.assert_allclose(distance_similarity(points), distances.max() - distances, atol=1e-5)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_a_gpu_is_a_clear_error() -> None:
    selector = get_selector("coreset", device="cuda")
    pool = Pool(ids=np.arange(40), embeddings=clustered(rows=40, dim=8))
    with pytest.raises(ConfigError, match="torch sees no GPU"):
        selector.select(pool, 4, np.random.default_rng(0))


def paired_pool(rows: int, dim: int = 384, seed: int = 0) -> Pool:
    """Reference towers and a learner's noisier ones, like pairs a SigLIP model embeds."""
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(rows, dim)).astype(np.float32)
    texts = (images + 0.8 * rng.normal(size=(rows, dim))).astype(np.float32)
    return Pool(
        embeddings=images,
        pair_embeddings=texts,
        learner_embeddings=(images + 0.5 * rng.normal(size=(rows, dim))).astype(np.float32),
        learner_pair_embeddings=(texts + 0.5 * rng.normal(size=(rows, dim))).astype(np.float32),
    )


def test_bf16_jest_keeps_the_batch_learnability_within_one_percent() -> None:
    pool = paired_pool(1280)
    exact_scorer, _ = JestSelector(precision="fp32", device="cpu")._scorer(pool)
    low_scorer, _ = JestSelector(precision="bf16", device="cpu")._scorer(pool)
    assert low_scorer.bf16 and not exact_scorer.bf16
    assert not np.array_equal(exact_scorer.full().numpy(), low_scorer.full().numpy())
    for seed in range(3):
        fp32, bf16 = (
            JestSelector(precision=precision, device="cpu").select(
                pool, 256, np.random.default_rng(seed)
            )
            for precision in ("fp32", "bf16")
        )
        judged = exact_scorer.sub_batch_learnability(bf16.indices)  # on fp32 products
        # measured: the same selections on 320-2,560-row pools
        assert judged >= exact_scorer.sub_batch_learnability(fp32.indices) - 0.01 * abs(judged)


@pytest.mark.parametrize(
    ("flags", "dim", "bf16"),
    [
        (set(), 384, False),
        ({"avx2"}, 384, False),
        ({"avx512_bf16"}, 384, True),
        ({"avx512_bf16"}, 64, False),  # narrow towers: the conversion costs what bf16 saves
        ({"amx_bf16"}, 64, True),
    ],
)
def test_auto_jest_precision_is_bf16_where_the_cpu_multiplies_it_faster(
    monkeypatch: pytest.MonkeyPatch, flags: set[str], dim: int, bf16: bool
) -> None:
    monkeypatch.setattr(hardware, "_cpu_flags", lambda: frozenset(flags))
    scorer, _ = JestSelector(device="cpu")._scorer(paired_pool(40, dim=dim))
    assert scorer.bf16 is bf16
    # coreset's Gram matrix competes with numpy's syrk: bf16 pays only with AMX
    assert hardware.uses_bf16("auto", torch.device("cpu")) is ("amx_bf16" in flags)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_jest_on_cuda_without_a_gpu_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="torch sees no GPU"):
        JestSelector(device="cuda").select(paired_pool(40, dim=8), 4, np.random.default_rng(0))
