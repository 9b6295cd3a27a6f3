"""Clustering, concepts, output staging and configuration on tiny data."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batchcraft.dataset.arrays import to_list_array, to_matrix
from batchcraft.dataset.schema import row_schema, to_contract
from batchcraft.errors import ConfigError, OutputError
from batchcraft.pipeline.cluster.kmeans import assign, train_centroids
from batchcraft.pipeline.cluster.stage import _sorted_by_id
from batchcraft.pipeline.concepts.zero_shot import read_vocabulary, zero_shot_concepts
from batchcraft.pipeline.config import CurateConfig, default_num_clusters
from batchcraft.pipeline.config_file import load_config_file
from batchcraft.pipeline.embedding.vectors import unit_norm
from batchcraft.pipeline.write.files import StagedOutput


def blobs(seed: int = 0, per_blob: int = 200, dim: int = 16) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(4, dim))
    labels = np.repeat(np.arange(4), per_blob)
    points = centres[labels] + 0.05 * rng.normal(size=(len(labels), dim))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32), labels


def test_kmeans_recovers_planted_clusters() -> None:
    points, labels = blobs()
    centroids = train_centroids(points, 8, iterations=20, seed=0)
    np.testing.assert_allclose(np.linalg.norm(centroids, axis=1), 1.0, atol=1e-5)
    found = assign(points, centroids).cluster
    for cluster in set(found.tolist()):  # no cluster mixes two planted blobs
        assert len(set(labels[found == cluster].tolist())) == 1


def test_kmeans_in_place_normalises_its_input_and_matches_the_copying_path() -> None:
    points, _ = blobs()
    scaled = points * np.linspace(0.5, 3.0, len(points), dtype=np.float32)[:, None]
    expected = train_centroids(scaled.copy(), 8, iterations=10, seed=1)
    owned = scaled.copy()
    found = train_centroids(owned, 8, iterations=10, seed=1, in_place=True)
    np.testing.assert_allclose(found, expected, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(owned, axis=1), 1.0, atol=1e-5)


def test_kmeans_sample_is_ordered_by_id_across_chunks() -> None:
    rng = np.random.default_rng(3)
    ids = [f"row-{i:03d}" for i in rng.permutation(50)]
    vectors = rng.normal(size=(50, 4)).astype(np.float32)
    table = pa.Table.from_batches(
        [
            pa.record_batch(
                {"id": pa.array(ids[a:b], pa.string()), "embedding": to_list_array(vectors[a:b])}
            )
            for a, b in ((0, 17), (17, 17), (17, 50))
        ]
    )
    order = np.argsort(ids)
    np.testing.assert_array_equal(_sorted_by_id(table), vectors[order])


def test_assign_gives_the_two_nearest_centroids() -> None:
    points, _ = blobs(1, per_blob=20)
    centroids = train_centroids(points, 4, seed=1)
    result = assign(points, centroids)
    order = np.argsort(-(points @ centroids.T), axis=1)
    np.testing.assert_array_equal(result.cluster, order[:, 0])
    np.testing.assert_array_equal(result.second_cluster, order[:, 1])
    assert np.all(result.centroid_sim >= result.second_sim)


def test_zero_shot_concepts_threshold_and_limit() -> None:
    rows = np.eye(3, dtype=np.float32)
    concepts = np.array([[1, 0, 0], [0.8, 0.6, 0], [0, 0, 1]], dtype=np.float32)
    names = ["alpha", "beta", "gamma"]
    assert zero_shot_concepts(rows, concepts, names, threshold=0.5, max_concepts=2) == [
        ["alpha", "beta"],
        ["beta"],
        ["gamma"],
    ]
    assert zero_shot_concepts(rows, concepts, names, threshold=0.5, max_concepts=1)[0] == ["alpha"]


def test_vocabulary_file(tmp_path: Path) -> None:
    (tmp_path / "v.txt").write_text("# header\nalpha\n\nbeta\nalpha\n")
    assert read_vocabulary(tmp_path / "v.txt") == ["alpha", "beta"]


def test_staged_output_refuses_existing_and_cleans_up_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(OutputError, match="--overwrite"):
        StagedOutput(target)
    with pytest.raises(RuntimeError), StagedOutput(target, overwrite=True) as staged:
        (staged.staging / "data" / "part-00000.parquet").write_text("half written")
        raise RuntimeError("crash mid-run")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"], "no staging debris left"
    assert list(target.iterdir()) == [], "the old dataset is untouched"
    with StagedOutput(target, overwrite=True) as staged:
        (staged.staging / "manifest.json").write_text("{}")
    assert (target / "manifest.json").exists()


def test_contract_conversion_makes_fixed_size_vectors() -> None:
    vectors = np.arange(6, dtype=np.float32).reshape(2, 3)
    batch = pa.RecordBatch.from_pydict(
        {"id": ["a", "b"], "embedding": to_list_array(vectors), "keep": [True, False]}
    )
    converted = to_contract(batch, row_schema(3))
    assert converted.schema.field("embedding").type == pa.list_(pa.float32(), 3)
    np.testing.assert_array_equal(to_matrix(converted.column("embedding")), vectors)
    assert converted.column("pair_embedding").null_count == 2


def test_config_validation_and_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"eps=1\.5"):
        CurateConfig(inputs=("x",), out="o", eps=1.5)
    with pytest.raises(ConfigError, match="no input"):
        CurateConfig(inputs=(), out="o")
    with pytest.raises(ConfigError, match="cannot match precomputed vectors"):
        CurateConfig(inputs=("x",), out="o", concepts_file="c.txt", embedding_column="vec")
    (tmp_path / "c.toml").write_text("eps = 0.05\nnum_clusters = 7\n")
    assert load_config_file(tmp_path / "c.toml") == {"eps": 0.05, "num_clusters": 7}
    (tmp_path / "bad.toml").write_text("epsilon = 0.05\n")
    with pytest.raises(ConfigError, match="unknown keys"):
        load_config_file(tmp_path / "bad.toml")
    assert default_num_clusters(10) == 1
    assert default_num_clusters(100_000) == 316


def test_stage_defaults_match_the_job_defaults() -> None:
    from batchcraft.pipeline import fit_centroids, fit_kmeans, semantic_dedup

    job = CurateConfig(inputs=("x",), out="o")
    job_parameter = {  # a stage's parameter -> the CurateConfig field it mirrors
        "sample_size": "kmeans_sample_size",
        "iterations": "kmeans_iterations",
        "seed": "seed",
        "near_eps": "near_eps",
        "keep_policy": "keep_policy",
        "second_cluster": "second_cluster",
    }
    checked = set()
    for stage in (fit_centroids, fit_kmeans, train_centroids, semantic_dedup):
        for name, parameter in inspect.signature(stage).parameters.items():
            if name in job_parameter and parameter.default is not inspect.Parameter.empty:
                field = job_parameter[name]
                assert parameter.default == getattr(job, field), (stage.__name__, name)
                checked.add(name)
    assert checked == set(job_parameter)


def test_vectors_of_any_finite_scale_come_out_unit_norm() -> None:
    # Precomputed vectors arrive at any scale; in float32 arithmetic the squares of these
    # underflow to 0 or overflow to inf and the rows came out near 0 instead of unit norm.
    vectors = np.array([[1e-30, 2e-30], [3e20, 4e20], [1e-45, 1e-45], [3.0, 4.0]], np.float32)
    scaled = unit_norm(vectors)
    assert scaled.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(scaled, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(scaled[1], [0.6, 0.8], rtol=1e-6)
    np.testing.assert_array_equal(unit_norm(np.zeros((1, 2), np.float32)), [[0.0, 0.0]])


def test_parquet_written_by_contract_reads_back(tmp_path: Path) -> None:
    from batchcraft.pipeline.write.files import write_parquet

    schema = row_schema(2)
    batch = to_contract(
        pa.RecordBatch.from_pydict({"id": ["a"], "embedding": to_list_array(np.ones((1, 2)))}),
        schema,
    )
    assert write_parquet([batch], tmp_path / "p.parquet", schema) == 1
    assert pq.read_table(tmp_path / "p.parquet").schema == schema


def test_stage_functions_import_from_the_package() -> None:
    # The README's `from batchcraft.pipeline import embed, ...`: a submodule named `embed`
    # once shadowed the stage function as soon as the job had imported it.
    import importlib

    import batchcraft.pipeline as package
    import batchcraft.pipeline.curation_job  # noqa: F401 - imports every step's modules
    from batchcraft.pipeline import embed
    from batchcraft.pipeline.embedding import stage

    assert embed is stage.embed
    for name, module in package._STAGES.items():
        assert getattr(package, name) is getattr(importlib.import_module(module), name), name


def test_no_submodule_is_named_like_an_export() -> None:
    # A submodule becomes an attribute of its package once imported, and then hides the
    # export of the same name (`from batchcraft.pipeline import embed` gave a module).
    import pkgutil

    import batchcraft.pipeline as package

    submodules = {info.name for info in pkgutil.iter_modules(package.__path__)}
    assert not submodules & set(package.__all__)
