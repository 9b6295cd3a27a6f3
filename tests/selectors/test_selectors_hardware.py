"""Where coreset's similarity is computed: bf16 where it is fast, within 1% of fp32."""

from __future__ import annotations

import numpy as np
import pytest

from batchcraft.errors import ConfigError
from batchcraft.selectors import get_selector, hardware
from batchcraft.selectors.facility_location import distance_similarity, facility_location
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
