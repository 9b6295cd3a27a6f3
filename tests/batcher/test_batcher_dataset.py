"""Opening curated datasets: kept rows, projection, and errors that name the bad file."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batchcraft.batcher.served_dataset import CuratedDataset
from batchcraft.dataset.arrays import to_matrix
from batchcraft.errors import DatasetError
from batchcraft.synth.curated import write_curated_dataset


def kept_ids(root: Path) -> list[str]:
    ids = []
    for path in sorted((root / "data").glob("part-*.parquet")):
        table = pq.read_table(path).to_pydict()
        ids += [i for i, keep in zip(table["id"], table["keep"], strict=True) if keep]
    return ids


def test_serves_kept_rows_of_all_shards_in_order(
    curated_dir: Path, dataset: CuratedDataset
) -> None:
    assert dataset.ids.tolist() == kept_ids(curated_dir)
    assert dataset.num_rows == 103 - 103 // 5
    assert dataset.positions_of(["row-000000", "row-000004", "nope"]).tolist() == [0, -1, -1]


def test_rows_projects_columns_in_the_given_order(dataset: CuratedDataset) -> None:
    batch = dataset.rows(np.array([3, 1]), ["embedding", "id"])
    assert batch.schema.names == ["embedding", "id"]
    assert batch.column(1).to_pylist() == [dataset.ids[3], dataset.ids[1]]
    assert dataset.rows(np.array([], np.int64), ["id"]).num_rows == 0


def test_matrices_gather_the_same_rows_as_arrow(dataset: CuratedDataset) -> None:
    columns = [c for c in ["embedding", "cluster"] if c in dataset.column_names]
    matrices = dataset.matrices(columns)
    assert matrices is not None
    positions = np.array([7, 0, 7, 30])
    rows = dataset.rows(positions, columns)
    for matrix, column in zip(matrices, rows.columns, strict=True):
        expected = column.to_numpy(zero_copy_only=False)
        if matrix.ndim == 2:
            expected = np.stack(expected)
        assert np.array_equal(np.take(matrix, positions, axis=0), expected)
    assert dataset.matrices(["embedding", "id"]) is None  # strings are gathered by Arrow


def test_matrices_refuse_columns_with_nulls(tmp_path: Path) -> None:
    root = write_curated_dataset(tmp_path / "d", num_rows=20, dim=4, num_shards=1)
    path = next((root / "data").glob("*.parquet"))
    table = pq.read_table(path)
    values = table.column("embedding").to_pylist()
    values[3] = None
    table = table.set_column(
        table.schema.get_field_index("embedding"),
        table.schema.field("embedding"),
        pa.array(values, table.schema.field("embedding").type),
    )
    pq.write_table(table, path)
    assert CuratedDataset.open(root).matrices(["embedding"]) is None


def test_a_cached_dataset_is_served_from_a_mapped_file(tmp_path: Path) -> None:
    root = write_curated_dataset(tmp_path / "d", num_rows=3000, dim=64, num_shards=3)
    in_memory = CuratedDataset.open(root)
    CuratedDataset.open(root, cache_dir=tmp_path / "cache")  # builds the cache file
    (cached,) = (tmp_path / "cache").glob("d-*.arrow")
    allocated = pa.total_allocated_bytes()
    mapped = CuratedDataset.open(root, cache_dir=tmp_path / "cache")
    # The rows are views of the mapped file, not copies in Arrow's heap.
    assert pa.total_allocated_bytes() - allocated < in_memory.table.nbytes // 10
    assert mapped.table.equals(in_memory.table)
    assert mapped.ids.tolist() == in_memory.ids.tolist()
    matrix = mapped.matrices(["embedding"])
    assert matrix is not None and np.array_equal(
        np.take(matrix[0], [5, 2], axis=0),
        np.stack(
            in_memory.rows(np.array([5, 2]), ["embedding"]).column(0).to_numpy(zero_copy_only=False)
        ),
    )
    assert list((tmp_path / "cache").iterdir()) == [cached]  # nothing half-written left


def test_a_torn_cache_file_is_rebuilt(tmp_path: Path) -> None:
    root = write_curated_dataset(tmp_path / "d", num_rows=40, dim=4, num_shards=2)
    expected = CuratedDataset.open(root).table
    CuratedDataset.open(root, cache_dir=tmp_path / "cache")
    (cached,) = (tmp_path / "cache").glob("*.arrow")
    torn = tmp_path / "torn"
    torn.write_bytes(cached.read_bytes()[:100])  # e.g. a power loss after the rename
    os.replace(torn, cached)  # a new file: truncating a mapped one in place would fault
    assert CuratedDataset.open(root, cache_dir=tmp_path / "cache").table.equals(expected)
    assert cached.stat().st_mode & 0o044 == 0o044  # other servers' users may map it


def test_a_changed_shard_gets_a_new_cache_and_a_missing_one_is_named(tmp_path: Path) -> None:
    root = write_curated_dataset(
        tmp_path / "d", num_rows=40, dim=4, num_shards=2, duplicate_every=5
    )
    cache = tmp_path / "cache"
    first = CuratedDataset.open(root, cache_dir=cache)
    shard = sorted((root / "data").glob("*.parquet"))[0]
    table = pq.read_table(shard)
    pq.write_table(
        table.set_column(
            table.schema.get_field_index("keep"), "keep", pa.array([True] * table.num_rows)
        ),
        shard,
    )
    again = CuratedDataset.open(root, cache_dir=cache)
    assert again.num_rows > first.num_rows  # the removed rows of that shard now count
    assert len(list(cache.glob("*.arrow"))) == 2
    shard.unlink()
    with pytest.raises(DatasetError, match=shard.name):
        CuratedDataset.open(root, cache_dir=cache)


def test_without_shards_in_manifest_parts_are_globbed(tmp_path: Path) -> None:
    root = write_curated_dataset(tmp_path / "d", num_rows=30, num_shards=3)
    manifest = json.loads((root / "manifest.json").read_text())
    del manifest["shards"]
    (root / "manifest.json").write_text(json.dumps(manifest))
    assert CuratedDataset.open(root).ids.tolist() == kept_ids(root)


def test_missing_shard_is_named(tmp_path: Path) -> None:
    root = write_curated_dataset(tmp_path / "d", num_rows=20, num_shards=2)
    (root / "data" / "part-00001.parquet").unlink()
    with pytest.raises(DatasetError, match=r"part-00001\.parquet.*missing"):
        CuratedDataset.open(root)


def test_corrupt_shard_is_named(tmp_path: Path) -> None:
    root = write_curated_dataset(tmp_path / "d", num_rows=20, num_shards=2)
    (root / "data" / "part-00000.parquet").write_bytes(b"PAR1 not really parquet")
    with pytest.raises(DatasetError, match=r"part-00000\.parquet is corrupt"):
        CuratedDataset.open(root)


@pytest.mark.parametrize(
    ("manifest", "message"),
    [(None, "manifest.json is missing"), ({"schema_version": 99}, "schema_version=99")],
)
def test_bad_manifest_is_reported(tmp_path: Path, manifest: dict | None, message: str) -> None:
    root = write_curated_dataset(tmp_path / "d", num_rows=10, num_shards=1)
    if manifest is None:
        (root / "manifest.json").unlink()
    else:
        (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DatasetError, match=message):
        CuratedDataset.open(root)


def test_missing_directory_is_reported(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        CuratedDataset.open(tmp_path / "absent")


def test_row_count_mismatch_with_manifest_is_reported(tmp_path: Path) -> None:
    root = write_curated_dataset(tmp_path / "d", num_rows=20, num_shards=2)
    other = write_curated_dataset(tmp_path / "e", num_rows=30, num_shards=2)
    shutil.copy(other / "data" / "part-00000.parquet", root / "data" / "part-00000.parquet")
    with pytest.raises(
        DatasetError, match=r"part-00000\.parquet has 15 rows, the manifest says 10"
    ):
        CuratedDataset.open(root)


def test_nullable_embeddings_become_nan_rows() -> None:
    import pyarrow as pa

    values = pa.array(np.arange(4, dtype=np.float32))
    array = pa.FixedSizeListArray.from_arrays(values, 2, mask=pa.array([False, True]))
    matrix = to_matrix(array)
    assert matrix[0].tolist() == [0.0, 1.0]
    assert np.isnan(matrix[1]).all()
