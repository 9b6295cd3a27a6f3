"""The curated-dataset contract: one conversion with one null rule, one manifest reader,
one provenance record format shared by writer and reader."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from batchcraft.dataset import layout
from batchcraft.dataset.arrays import matrix_view, to_fixed_size_list, to_list_array, to_matrix
from batchcraft.dataset.manifest import list_shards, read_manifest, write_manifest
from batchcraft.dataset.provenance import batch_id, encode_record, parse_record
from batchcraft.dataset.schema import CONTRACT_COLUMNS, SCHEMA_VERSION, row_schema, to_contract
from batchcraft.errors import ConfigError, DatasetError, OutputError


@pytest.mark.parametrize("kind", ["list", "fixed"])
def test_a_null_vector_is_a_row_of_nan_and_the_others_keep_their_place(kind: str) -> None:
    values = [[1.0, 2.0], None, [3.0, 4.0]]
    array = pa.array(values, pa.list_(pa.float32(), 2 if kind == "fixed" else -1))
    matrix = to_matrix(array)
    assert matrix.shape == (3, 2) and matrix.dtype == np.float32
    np.testing.assert_array_equal(matrix[[0, 2]], [[1, 2], [3, 4]])
    assert np.isnan(matrix[1]).all()


def test_vectors_of_unequal_width_are_refused() -> None:
    with pytest.raises(ValueError, match="unequal length"):
        to_matrix(pa.array([[1.0, 2.0], [3.0, 4.0, 5.0], [6.0]]))


def test_an_empty_or_all_null_column_takes_the_given_width() -> None:
    assert to_matrix(pa.array([], pa.list_(pa.float32())), 4).shape == (0, 4)
    assert to_matrix(pa.array([None, None], pa.list_(pa.float32())), 3).shape == (2, 3)


def test_matrix_view_is_zero_copy_and_absent_with_nulls() -> None:
    matrix = np.arange(12, dtype=np.float32).reshape(4, 3)
    column = to_fixed_size_list(matrix).slice(1, 2)  # an offset the view must honour
    view = matrix_view(column)
    assert view is not None and not view.flags.owndata
    np.testing.assert_array_equal(view, matrix[1:3])
    with_null = pa.array([[1.0], None], pa.list_(pa.float32(), 1))
    assert matrix_view(with_null) is None
    assert matrix_view(pa.array(["a"])) is None


def test_list_arrays_round_trip_through_the_contract_schema() -> None:
    vectors = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    batch = pa.RecordBatch.from_pydict({"id": ["a", "b", "c"], "embedding": to_list_array(vectors)})
    converted = to_contract(batch, row_schema(4, "float16"))
    assert converted.schema.field("embedding").type == pa.list_(pa.float16(), 4)
    np.testing.assert_allclose(to_matrix(converted.column("embedding")), vectors, atol=1e-2)
    with pytest.raises(OutputError, match="dimension 5"):
        to_contract(batch, row_schema(5))


def test_the_label_and_the_users_columns_follow_dup_kind_under_their_own_types() -> None:
    user = [pa.field("url", pa.string()), pa.field("meta", pa.struct([("page", pa.int16())]))]
    schema = row_schema(2, label_type=pa.int64(), user_columns=user)
    position = schema.names.index("dup_kind")
    assert schema.names[position + 1 : position + 4] == ["label", "url", "meta"]
    assert schema.field("label").type == pa.int64() and schema.field("meta").type == user[1].type
    assert set(schema.names) - {"url", "meta"} == set(CONTRACT_COLUMNS)
    assert "label" not in row_schema(2).names, "no label column without a label"
    batch = pa.RecordBatch.from_pydict({"id": ["a"], "label": [3], "url": [None]})
    converted = to_contract(batch, schema)
    assert converted.column("label").to_pylist() == [3] and converted.column("meta").null_count == 1
    with pytest.raises(ConfigError, match=r"user columns \['keep'\] are named like contract"):
        row_schema(2, user_columns=[pa.field("keep", pa.bool_())])


def _dataset(root: Path, **manifest: object) -> Path:
    layout.data_dir(root).mkdir(parents=True)
    for index in (1, 0):
        (root / layout.shard_name(index)).write_bytes(b"")
    write_manifest(root, {"schema_version": SCHEMA_VERSION, **manifest})
    return root


def test_shards_come_from_the_manifest_in_its_order_else_sorted(tmp_path: Path) -> None:
    listed = [{"path": layout.shard_name(1), "num_rows": 5}, {"path": layout.shard_name(0)}]
    root = _dataset(tmp_path / "listed", shards=listed)
    shards = list_shards(root, read_manifest(root))
    assert [s.path.name for s in shards] == ["part-00001.parquet", "part-00000.parquet"]
    assert [s.num_rows for s in shards] == [5, -1]
    root = _dataset(tmp_path / "globbed")
    assert [s.path.name for s in list_shards(root, read_manifest(root))] == [
        "part-00000.parquet",
        "part-00001.parquet",
    ]


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ({"schema_version": 2}, "schema_version=2 is not supported"),
        ({"schema_version": True}, "schema_version=True is not supported"),
        ({"schema_version": 1, "shards": [{"num_rows": 3}]}, "bad shard entry"),
        ({"schema_version": 1, "shards": "data/"}, "shards must be a list"),
    ],
)
def test_a_manifest_breaking_the_contract_is_named(
    tmp_path: Path, manifest: dict[str, object], message: str
) -> None:
    tmp_path.joinpath(layout.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(DatasetError, match=message):
        list_shards(tmp_path, read_manifest(tmp_path))


def test_required_manifest_keys_are_checked(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "d")
    with pytest.raises(DatasetError, match=r"lacks required keys \['counts'\]"):
        read_manifest(root, required=("counts",))


def test_a_provenance_record_reads_back_as_written() -> None:
    line = encode_record(
        batch_id=batch_id("run-1", 2, 17, 3),
        job="run-1",
        epoch=2,
        step=17,
        rank=3,
        selector="jest",
        ids=["a", "b"],
        metrics={"learnability": np.float32(0.5), "label": "x", "bad": float("nan")},
    )
    record, ids = parse_record(line.decode())
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert ids == ["a", "b"] and record.size == 2
    assert (record.job, record.epoch, record.step, record.rank) == ("run-1", 2, 17, 3)
    assert record.batch_id == "run-1/e2/s17/r3"
    assert record.info == {"learnability": 0.5} and record.time is not None
