"""The curation job on precomputed embeddings (no model): validation, sampling, resources."""

from __future__ import annotations

import csv
import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F

from batchcraft.dataset.arrays import to_matrix

pytestmark = pytest.mark.spark

DIMENSION = 8
ROWS_PER_SHUFFLE_PARTITION = 10
SHUFFLE_PARTITIONS = "spark.sql.shuffle.partitions"
# Records whose vector length differs from the corpus's (the very first record among them:
# the expected length is the most common one, not the first one seen).
WRONG_LENGTH = {"p000": 5, "p050": 9, "j020": 5}
# Vectors that cannot be scaled to unit norm, and what their reject's detail must say.
UNUSABLE = {
    "p030": ([0.5] * 7 + [float("nan")], "holds nan at position 7"),
    "p031": ([float("inf")] + [0.5] * 7, "holds inf at position 0"),
    "p032": ([0.0] * DIMENSION, "is all zeros"),
    "j040": ([0.5, float("-inf")] + [0.5] * 6, "holds -inf at position 1"),
    "j041": ([0.5] * 3 + [1e39] + [0.5] * 4, "holds 1e+39 at position 3 (beyond the float32"),
    "j042": ([0] * DIMENSION, "is all zeros"),
}
# A valid record whose id an earlier, invalid record (the vector with a hole) also has.
REUSED_BY_VALID = {"id": "j999", "text": "the valid record with this id", "tags": "json"}


@dataclass(frozen=True)
class Run:
    manifest: dict[str, Any]
    out: Path
    num_records: int
    kept_frames: list[tuple[list[str], str]]  # (columns, physical plan) of each cached frame
    shuffle_partitions: tuple[str, str]  # the session's setting before and after the job


def write_corpus(directory: Path) -> int:
    """A Parquet and a JSONL file with 8-d vectors, a few of another length; the record count."""
    rng = np.random.default_rng(7)

    def vector(row_id: str) -> list[float]:
        if row_id in UNUSABLE:
            return UNUSABLE[row_id][0]
        return rng.normal(size=WRONG_LENGTH.get(row_id, DIMENSION)).round(4).tolist()

    ids = [f"p{i:03d}" for i in range(150)]
    pq.write_table(
        pa.table(
            {
                "id": ids,
                "text": [f"parquet text {i}" for i in ids],
                "tags": ["even" if i % 2 == 0 else "odd" for i in range(len(ids))],
                "vec": pa.array([vector(i) for i in ids], pa.list_(pa.float32())),
            }
        ),
        directory / "a.parquet",
    )
    records = [
        {"id": f"j{i:03d}", "text": f"json text {i}", "tags": "json", "vec": vector(f"j{i:03d}")}
        for i in range(50)
    ]
    records.append({"id": "p010", "text": "a reused id", "tags": "", "vec": [1.0] * DIMENSION})
    records.append({"id": "j999", "text": "a hole", "tags": "", "vec": [1.0, None] * 4})
    records.append({**REUSED_BY_VALID, "vec": [0.5] * DIMENSION})
    (directory / "b.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return len(ids) + len(records)


@pytest.fixture(scope="module")
def run(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Run:
    from batchcraft.pipeline import curate, frames

    directory = tmp_path_factory.mktemp("precomputed")
    num_records = write_corpus(directory)
    kept: list[tuple[list[str], str]] = []
    keep = frames.PersistedFrames.keep

    def recording_keep(self: Any, df: Any, **kwargs: Any) -> Any:
        kept.append((df.columns, df._jdf.queryExecution().executedPlan().toString()))
        return keep(self, df, **kwargs)

    before = spark.conf.get(SHUFFLE_PARTITIONS)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(frames.PersistedFrames, "keep", recording_keep)
        patch.setattr(frames, "ROWS_PER_SHUFFLE_PARTITION", ROWS_PER_SHUFFLE_PARTITION)
        manifest = curate(
            [str(directory / "a.parquet"), str(directory / "b.jsonl")],
            str(directory / "out"),
            spark=spark,
            id_column="id",
            embedding_column="vec",
            concept_column="tags",
            kmeans_sample_size=20,
            num_clusters=1000,  # capped at the sample: one centroid per sampled row
            write_report=False,
        )
    after = spark.conf.get(SHUFFLE_PARTITIONS)
    return Run(manifest, directory / "out", num_records, kept, (before, after))


@dataclass(frozen=True)
class CsvRun:
    manifest: dict[str, Any]
    out: Path
    given: dict[str, list[float]]  # the valid records' vectors, by id


# CSV records whose vector cell cannot be read, and what their reject's detail must say.
BAD_CSV_CELLS = {
    "x1": ("0.1, 0.2, 0.3, 0.4", "is not a JSON array of numbers"),
    "x2": ('[0.1, "x", 0.3, 0.4]', "holds 'x' at position 1, not a number"),
}


@pytest.fixture(scope="module")
def csv_run(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> CsvRun:
    """A small CSV whose ``vec`` cells hold JSON arrays, a few of them unreadable."""
    from batchcraft.pipeline import curate

    directory = tmp_path_factory.mktemp("csv_vectors")
    rng = np.random.default_rng(11)
    given = {f"c{i:02d}": rng.normal(size=4).round(4).tolist() for i in range(40)}
    rows = [(row_id, f"csv text {row_id}", json.dumps(v)) for row_id, v in given.items()]
    rows += [(row_id, f"csv text {row_id}", cell) for row_id, (cell, _) in BAD_CSV_CELLS.items()]
    rows.append(("c05", "a reused id", json.dumps([0.5] * 4)))
    with open(directory / "c.csv", "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([("id", "text", "vec"), *rows])
    manifest = curate(
        str(directory / "c.csv"),
        str(directory / "out"),
        spark=spark,
        id_column="id",
        embedding_column="vec",
        kmeans_sample_size=20,
        num_clusters=2,
        write_report=False,
    )
    return CsvRun(manifest, directory / "out", given)


def test_csv_cells_holding_json_arrays_are_used_as_precomputed_vectors(csv_run: CsvRun) -> None:
    rows = pq.read_table(csv_run.out / "data").sort_by("id")
    assert rows.column("id").to_pylist() == sorted(csv_run.given)
    assert csv_run.manifest["embedding"]["model"] == "precomputed"
    assert csv_run.manifest["embedding"]["dim"] == 4
    given = np.array([csv_run.given[i] for i in rows.column("id").to_pylist()])
    expected = given / np.linalg.norm(given, axis=1, keepdims=True)
    np.testing.assert_allclose(to_matrix(rows.column("embedding")), expected, atol=1e-6)


def test_csv_cells_that_are_not_json_arrays_of_numbers_are_rejected_per_record(
    csv_run: CsvRun,
) -> None:
    rejects = {r["id"]: r for r in pq.read_table(csv_run.out / "rejects").to_pylist()}
    assert set(rejects) == {*BAD_CSV_CELLS, "c05"}
    for row_id, (cell, detail) in BAD_CSV_CELLS.items():
        assert rejects[row_id]["reason"] == "malformed_record", rejects[row_id]
        assert rejects[row_id]["detail"].startswith(f"embedding column 'vec' {detail}")
        assert cell in rejects[row_id]["raw"]
    csv_file = csv_run.out.parent / "c.csv"
    assert rejects["c05"]["reason"] == "duplicate_id"
    assert rejects["c05"]["detail"].endswith(f"in data row 6 of {csv_file}")


def test_vectors_of_another_length_are_rejected_per_record(run: Run) -> None:
    rejects = pq.read_table(run.out / "rejects").to_pylist()
    wrong = {r["id"]: r for r in rejects if r["reason"] == "embedding_dimension"}
    assert set(wrong) == set(WRONG_LENGTH)
    for row_id, length in WRONG_LENGTH.items():
        assert f"has {length} values" in wrong[row_id]["detail"], wrong[row_id]
        assert f"have {DIMENSION}" in wrong[row_id]["detail"], wrong[row_id]
        assert wrong[row_id]["file"] and wrong[row_id]["raw"]
    assert run.manifest["embedding"]["dim"] == DIMENSION
    rows = pq.read_table(run.out / "data")
    assert rows.schema.field("embedding").type == pa.list_(pa.float32(), DIMENSION)
    assert not set(WRONG_LENGTH) & set(rows.column("id").to_pylist())


def test_vectors_that_cannot_be_normalised_are_rejected_per_record(run: Run) -> None:
    rejects = {r["id"]: r for r in pq.read_table(run.out / "rejects").to_pylist()}
    for row_id, (_, detail) in UNUSABLE.items():
        assert rejects[row_id]["reason"] == "malformed_record", rejects[row_id]
        assert rejects[row_id]["detail"].startswith(f"embedding column 'vec' {detail}")
        assert rejects[row_id]["raw"] and rejects[row_id]["file"]
    rows = pq.read_table(run.out / "data")
    assert not set(UNUSABLE) & set(rows.column("id").to_pylist())
    vectors = to_matrix(rows.column("embedding"))
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.isfinite(np.load(run.out / "centroids.npy")).all()


def test_an_invalid_record_does_not_take_the_id_of_a_later_valid_one(run: Run) -> None:
    rows = {r["id"]: r for r in pq.read_table(run.out / "data").to_pylist()}
    assert rows[REUSED_BY_VALID["id"]]["text"] == REUSED_BY_VALID["text"]
    rejects = [r for r in pq.read_table(run.out / "rejects").to_pylist() if r["id"] == "j999"]
    assert [r["reason"] for r in rejects] == ["malformed_record"], "it keeps its own reason"


def test_every_reject_keeps_its_file_detail_and_a_preview(run: Run) -> None:
    rejects = pq.read_table(run.out / "rejects").to_pylist()
    assert all(r["file"] and r["detail"] and r["raw"] for r in rejects), rejects
    (repeat,) = [r for r in rejects if r["reason"] == "duplicate_id"]
    assert repeat["id"] == "p010"
    assert "a reused id" in repeat["raw"], "the preview shows the rejected record, not the kept one"
    kept_in = run.out.parent / "a.parquet"
    assert repeat["detail"] == f"id already used by the valid record in row 10 of {kept_in}"


def test_every_record_is_accounted_for(run: Run) -> None:
    rows = pq.read_table(run.out / "data")
    rejects = pq.read_table(run.out / "rejects")
    counts = run.manifest["counts"]
    assert rows.num_rows + rejects.num_rows == run.num_records == counts["total"]["in"]
    assert counts["rejected_by_reason"] == {
        "duplicate_id": 1,
        "embedding_dimension": len(WRONG_LENGTH),
        "malformed_record": 1 + len(UNUSABLE),
    }
    assert dict(Counter(rejects.column("reason").to_pylist())) == counts["rejected_by_reason"]


def test_manifest_records_the_rows_kmeans_trained_on(run: Run) -> None:
    clustering = run.manifest["clustering"]
    trained_on = len(np.load(run.out / "centroids.npy"))  # one centroid per sampled row
    assert clustering["sample_size"] == trained_on
    assert clustering["requested_sample_size"] == 20


def test_concepts_from_a_column_cache_no_extra_copy_of_the_rows(run: Run) -> None:
    cached_with_concepts = [columns for columns, _ in run.kept_frames if "concepts" in columns]
    assert cached_with_concepts == []
    rows = pq.read_table(run.out / "data").to_pylist()
    assert {tuple(r["concepts"]) for r in rows} == {("even",), ("odd",), ("json",)}


def test_duplicate_id_check_uses_shuffle_partitions_scaled_to_the_input(run: Run) -> None:
    window = next(plan for _, plan in run.kept_frames if "row_number()" in plan)
    partitions = re.search(r"Exchange hashpartitioning\(id#\d+, (\d+)\)", window)
    assert partitions is not None, window
    assert int(partitions.group(1)) == math.ceil(run.num_records / ROWS_PER_SHUFFLE_PARTITION)
    before, after = run.shuffle_partitions
    assert int(before) < int(partitions.group(1))
    assert after == before, "the job restores the session's setting"


def test_expected_dimension_is_the_most_common_then_the_first_seen(spark: Any) -> None:
    from batchcraft.pipeline import embedding_dimension

    def frame(lengths: list[int], rejected: frozenset[int] = frozenset()) -> Any:
        rows = [
            (0, record, "bad" if record in rejected else None, [0.5] * length)
            for record, length in enumerate(lengths)
        ]
        schema = "file_index int, record long, reason string, given_embedding array<float>"
        return spark.createDataFrame(rows, schema)

    assert embedding_dimension(frame([3, 4, 4])) == 4
    assert embedding_dimension(frame([3, 4, 4, 3])) == 3  # a tie: the length seen first
    assert embedding_dimension(frame([3, 4, 4, 3, 3], rejected=frozenset({3, 4}))) == 4
    assert embedding_dimension(frame([3], rejected=frozenset({0}))) is None


def test_only_valid_records_compete_for_an_id(spark: Any) -> None:
    from batchcraft.pipeline import reject_duplicate_ids
    from batchcraft.pipeline.read.inputs import InputFile

    rows = [  # (record, id, reason given by parsing)
        (0, "a", "missing_text"),
        (1, "a", None),  # the first valid "a": kept
        (2, "a", None),
        (3, "b", None),
        (4, "b", "invalid_utf8"),
        (5, "c", "missing_text"),
        (6, "c", "text_too_long"),
    ]
    frame = spark.createDataFrame(
        [(0, record, row_id, f"text {record}", reason) for record, row_id, reason in rows],
        "file_index int, record long, id string, text string, reason string",
    ).withColumns({"detail": F.lit(None).cast("string"), "raw": F.lit(None).cast("string")})
    result = {r["record"]: r for r in reject_duplicate_ids(frame).collect()}
    assert [result[record]["reason"] for record, _, _ in rows] == [
        "missing_text",
        None,
        "duplicate_id",
        None,
        "invalid_utf8",
        "missing_text",
        "text_too_long",
    ]
    assert "text 2" in result[2]["raw"]
    where = "id already used by the valid record in"
    assert result[2]["detail"] == f"{where} input file #0 at position 1"
    files = [InputFile("/data/b.jsonl", "jsonl", "b", 100, "")]
    located = {r["record"]: r for r in reject_duplicate_ids(frame, files).collect()}
    assert located[2]["detail"] == f"{where} the line at byte 1 of /data/b.jsonl"
    assert [located[record]["reason"] for record, _, _ in rows] == [
        result[record]["reason"] for record, _, _ in rows
    ]


@pytest.mark.parametrize("policy", ["newest", "Prototypical", ""])
def test_an_unknown_keep_policy_is_an_error_naming_the_valid_ones(spark: Any, policy: str) -> None:
    from batchcraft.errors import ConfigError
    from batchcraft.pipeline import semantic_dedup

    frame = spark.createDataFrame(
        [("a", [1.0, 0.0], 0, 1.0, -1), ("b", [1.0, 0.0], 0, 1.0, -1)],
        "id string, embedding array<float>, cluster int, centroid_sim float, second_cluster int",
    )
    valid = "must be one of prototypical, hardest, smallest_id"
    with pytest.raises(ConfigError, match=rf"keep_policy='{policy}' {valid}"):
        semantic_dedup(frame, eps=0.1, keep_policy=policy)  # type: ignore[arg-type]
