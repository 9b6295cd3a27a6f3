"""The input's own columns through the Spark job (precomputed vectors, no model): kept under
their names and types by every stage, duplicates included; the label and the reference
loss mapped; a reference loss that is no finite number rejected and counted."""

from __future__ import annotations

import csv
import datetime
import json
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.spark

# JSONL records whose reference loss is no finite number, and what their reject says.
BAD_LOSSES = {
    "j005": ("abc", "holds 'abc', not a number"),
    "j006": (float("nan"), "holds nan"),
    "j007": (True, "holds True, not a number"),
    "j008": (float("inf"), "holds inf"),
}


@dataclass(frozen=True)
class Run:
    manifest: dict[str, Any]
    out: Path
    num_records: int

    def rows(self) -> dict[str, dict[str, Any]]:
        return {row["id"]: row for row in pq.read_table(self.out / "data").to_pylist()}


def write_inputs(directory: Path) -> int:
    """A JSONL, a Parquet and a CSV file of 4-d vectors and columns of many types; the
    record count."""
    rng = np.random.default_rng(4)
    records = [
        {
            "id": f"j{i:03d}",
            "text": f"json text {i}",
            "vec": rng.normal(size=4).round(4).tolist(),
            "n": i,
            "f": i + 0.5,
            "url": f"https://example.org/{i}",
            "tags": ["even" if i % 2 == 0 else "odd"] * (i % 3),
            "meta": {"page": i, "authors": [f"a{i}"]},
            "cls": i % 3,
            "loss": BAD_LOSSES.get(f"j{i:03d}", (0.1 * i,))[0],
            "junk": "left out",
        }
        for i in range(40)
    ]
    records[9]["loss"] = None  # a null reference loss stays null
    records.append({**records[3], "id": "j900", "url": "the duplicate's own url", "n": 900})
    records.append({**records[4], "id": "j901", "text": "same vector, other text", "n": 901})
    with open(directory / "a.jsonl", "w") as handle:  # json.dumps writes NaN and Infinity
        handle.writelines(json.dumps(record) + "\n" for record in records)
    ids = [f"p{i:03d}" for i in range(30)]
    pq.write_table(
        pa.table(
            {
                "id": ids,
                "text": [f"parquet text {i}" for i in range(30)],
                "vec": pa.array(rng.normal(size=(30, 4)).tolist(), pa.list_(pa.float32())),
                "n": pa.array(range(30), pa.int32()),
                "at": pa.array(
                    [datetime.datetime(2024, 1, 1, 0, 0, i) for i in range(30)], pa.timestamp("ns")
                ),
                "blob": pa.array([bytes([i, 255]) for i in range(30)], pa.binary()),
                "cls": pa.array(range(30), pa.int64()),
                "loss": pa.array([2.0] * 30, pa.float64()),
                "junk": ["left out"] * 30,
            }
        ),
        directory / "b.parquet",
    )
    with open(directory / "c.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "vec", "note", "loss"])
        for i in range(10):
            loss = "high" if i == 0 else f"{i}.5"
            writer.writerow(
                [f"c{i:03d}", f"csv text {i}", json.dumps([1.0, i, 0.5, -1.0]), f"n{i}", loss]
            )
    return len(records) + 30 + 10


@pytest.fixture(scope="module")
def run(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Run:
    from batchcraft.pipeline import curate

    directory = tmp_path_factory.mktemp("user_columns")
    num_records = write_inputs(directory)
    manifest = curate(
        [str(directory / name) for name in ("a.jsonl", "b.parquet", "c.csv")],
        str(directory / "out"),
        spark=spark,
        id_column="id",
        embedding_column="vec",
        label_column="cls",
        ref_loss_column="loss",
        drop_columns="junk",
        num_clusters=2,
        eps=0.02,
        near_eps=0.01,
        write_report=False,
    )
    return Run(manifest, directory / "out", num_records)


def test_every_column_keeps_its_name_and_its_promoted_type(run: Run) -> None:
    schema = pq.read_schema(run.out / "data" / "part-00000.parquet")
    types = {name: schema.field(name).type for name in schema.names}
    assert {name: str(kind) for name, kind in types.items() if name not in CONTRACT} == {
        "n": "int64",  # int64 in JSONL, int32 in Parquet
        "f": "double",
        "url": "string",
        "tags": "list<element: string>",
        "meta": "struct<page: int64, authors: list<element: string>>",
        "at": "timestamp[ns]",
        "blob": "binary",
        "note": "string",  # CSV cells are text
    }
    assert types["label"] == pa.int64(), "the label keeps its input type"
    assert types["ref_loss"] == pa.float32()
    assert "junk" not in types and "cls" not in types and "loss" not in types
    extra = run.manifest["columns"]["extra"]
    assert [(c["name"], c["type"]) for c in extra][:2] == [("n", "int64"), ("f", "double")]
    assert run.manifest["columns"]["dropped"] == ["junk"]
    assert run.manifest["columns"]["label"] == {"column": "cls", "type": "int64"}
    assert run.manifest["columns"]["ref_loss"] == {"from": "column", "column": "loss"}


CONTRACT = {
    "id", "text", "pair_text", "source", "embedding", "pair_embedding", "cluster",
    "centroid_sim", "dup_of", "dup_kind", "label", "max_sim", "dup_jaccard", "keep", "concepts",
    "ref_loss",
}  # fmt: skip


def test_values_survive_for_every_input_format(run: Run) -> None:
    rows = run.rows()
    json_row, parquet_row, csv_row = rows["j010"], rows["p007"], rows["c003"]
    assert (json_row["n"], json_row["f"], json_row["url"]) == (10, 10.5, "https://example.org/10")
    assert json_row["tags"] == ["even"] and json_row["meta"] == {"page": 10, "authors": ["a10"]}
    assert (json_row["label"], json_row["ref_loss"]) == (1, pytest.approx(1.0))
    assert json_row["at"] is None and json_row["note"] is None  # columns of other files
    assert parquet_row["at"] == datetime.datetime(2024, 1, 1, 0, 0, 7)
    assert (parquet_row["blob"], parquet_row["n"], parquet_row["label"]) == (b"\x07\xff", 7, 7)
    assert (csv_row["note"], csv_row["ref_loss"], csv_row["label"]) == ("n3", 3.5, None)
    assert rows["j009"]["ref_loss"] is None, "a null reference loss stays null"


def test_removed_duplicates_keep_their_own_columns(run: Run) -> None:
    rows = run.rows()
    exact = rows["j900"]
    assert (exact["dup_kind"], exact["dup_of"], exact["keep"]) == ("exact", "j003", False)
    assert (exact["url"], exact["n"]) == ("the duplicate's own url", 900)
    assert exact["embedding"] == rows["j003"]["embedding"]
    semantic = rows["j901"]  # j004's vector: one of the two is removed
    removed = semantic if not semantic["keep"] else rows["j004"]
    assert removed["dup_kind"] in {"near", "semantic"}
    assert (semantic["n"], rows["j004"]["n"]) == (901, 4)


def test_reference_losses_that_are_no_finite_numbers_are_rejects_and_counted(run: Run) -> None:
    rejects = {r["id"]: r for r in pq.read_table(run.out / "rejects").to_pylist()}
    assert set(rejects) == {*BAD_LOSSES, "c000"}
    for row_id, (_, detail) in BAD_LOSSES.items():
        assert rejects[row_id]["reason"] == "bad_ref_loss"
        assert rejects[row_id]["detail"].startswith(f"ref_loss column 'loss' {detail}")
    assert rejects["c000"]["detail"] == "ref_loss column 'loss' holds 'high', not a number"
    counts = run.manifest["counts"]
    assert counts["rejected_by_reason"] == {"bad_ref_loss": len(BAD_LOSSES) + 1}
    total = counts["total"]
    duplicates = total["exact_duplicates"] + total["near_duplicates"] + total["semantic_duplicates"]
    assert total["in"] == run.num_records == total["kept"] + duplicates + total["rejected"]
    assert len(run.rows()) + len(rejects) == run.num_records


def test_the_report_funnel_counts_the_rejected_reference_losses(run: Run, tmp_path: Path) -> None:
    from batchcraft.report import write_report

    copy = tmp_path / "dataset"
    shutil.copytree(run.out, copy)
    summary = write_report(copy)
    assert summary.warnings == ()
    report = json.loads((copy / "report.json").read_text())
    assert report["funnel"]["rejected_by_reason"] == {"bad_ref_loss": len(BAD_LOSSES) + 1}


def test_jsonl_types_that_do_not_promote_stop_the_job_naming_files_and_types(
    spark: Any, tmp_path: Path
) -> None:
    from batchcraft.errors import InputError
    from batchcraft.pipeline import curate

    (tmp_path / "a.jsonl").write_text('{"text": "a", "vec": [1, 0], "n": 1}\n')
    (tmp_path / "b.jsonl").write_text('{"text": "b", "vec": [0, 1], "n": "one"}\n')
    with pytest.raises(InputError) as error:
        curate(
            str(tmp_path / "*.jsonl"), str(tmp_path / "out"), spark=spark, embedding_column="vec"
        )
    message = str(error.value)
    assert f"int64 in {tmp_path / 'a.jsonl'}; string in {tmp_path / 'b.jsonl'}" in message
    assert "\n" not in message and not (tmp_path / "out").exists()
    counts = Counter(
        curate(
            str(tmp_path / "*.jsonl"),
            str(tmp_path / "out"),
            spark=spark,
            embedding_column="vec",
            drop_columns=["n"],
            num_clusters=1,
        )["columns"]["dropped"]
    )
    assert counts == {"n": 1}
