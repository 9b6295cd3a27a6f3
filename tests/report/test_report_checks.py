"""Disagreements between data, manifest and provenance become visible warnings."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from report_dataset import FixtureDataset, write_provenance

from batchcraft.errors import DatasetError
from batchcraft.report import add_report_arguments, run_report, write_report


def _edit_manifest(dataset: FixtureDataset, edit: dict[str, object]) -> None:
    path = dataset.path / "manifest.json"
    manifest = json.loads(path.read_text())
    for dotted, value in edit.items():
        *parents, last = dotted.split(".")
        target = manifest
        for key in parents:
            target = target[key]
        target[last] = value
    path.write_text(json.dumps(manifest))


def test_manifest_that_disagrees_with_the_data_is_flagged(dataset: FixtureDataset) -> None:
    kept = dataset.manifest["counts"]["total"]["kept"]
    _edit_manifest(dataset, {"counts.total.kept": kept + 1, "num_kept": kept + 1})
    summary = write_report(dataset.path)
    assert any("counts.total.kept" in w and str(kept + 1) in w for w in summary.warnings)
    report = json.loads(summary.json_path.read_text())
    fields = {m["field"] for m in report["funnel"]["reconciliation"]["mismatches"]}
    assert fields == {"counts.total.kept", "num_kept"}
    assert report["funnel"]["total"]["kept"] == kept  # the funnel shows the data's numbers
    page = summary.html_path.read_text()
    assert 'class="warning"' in page and "counts.total.kept" in page
    assert "2 of" in page and "disagree with manifest.json" in page


def test_internally_inconsistent_stage_is_flagged(dataset: FixtureDataset) -> None:
    stages = dataset.manifest["counts"]["stages"]
    stages[1]["duplicates"] += 2
    _edit_manifest(dataset, {"counts.stages": stages})
    warnings = write_report(dataset.path).warnings
    assert any("in = kept + duplicates + rejected" in w for w in warnings)


def test_rows_breaking_the_contract_are_flagged(dataset: FixtureDataset) -> None:
    shard = dataset.path / "data" / "part-00000.parquet"
    table = pq.read_table(shard)
    keep = table["keep"].to_pylist()
    kinds = table["dup_kind"].to_pylist()
    victim = next(i for i, kind in enumerate(kinds) if kind is None)
    keep[victim] = False  # removed, but no duplicate kind says why
    table = table.set_column(table.schema.get_field_index("keep"), "keep", pc.cast(keep, "bool"))
    pq.write_table(table, shard)
    warnings = write_report(dataset.path).warnings
    assert "1 rows: removed without a dup_kind (keep = false)" in warnings
    assert any("counts.total.kept" in w for w in warnings)


def test_provenance_problems_are_flagged(dataset: FixtureDataset) -> None:
    removed = dataset.rows[~dataset.rows.keep].id.iloc[0]
    extra = [
        {
            "job": "run-b",
            "epoch": 0,
            "step": 99,
            "rank": 0,
            "selector": "jest",
            "ids": ["no-such-id", removed],
            "info": {},
        }
    ]
    write_provenance(dataset.path / "provenance", dataset, extra)
    with (dataset.path / "provenance" / "run-a.jsonl").open("a") as handle:
        handle.write("{not json\n")
    summary = write_report(dataset.path)
    assert any("1 malformed lines" in w and "run-a.jsonl" in w for w in summary.warnings)
    assert any(
        "1 served examples have ids that are not in this dataset" in w for w in summary.warnings
    )
    assert any("1 served examples are rows with keep = false" in w for w in summary.warnings)


def test_without_provenance_there_is_no_serving_section(
    dataset: FixtureDataset, tmp_path: Path
) -> None:
    (dataset.path / "provenance").rename(tmp_path / "elsewhere")
    summary = write_report(dataset.path)
    assert not summary.has_serving
    assert json.loads(summary.json_path.read_text())["serving"] is None
    assert 'id="serving"' not in summary.html_path.read_text()
    assert write_report(dataset.path, provenance_dir=tmp_path / "elsewhere").has_serving
    with pytest.raises(DatasetError, match="no provenance log"):
        write_report(dataset.path, provenance_dir=tmp_path / "missing")


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda d: (d / "manifest.json").unlink(), "manifest.json not found"),
        (lambda d: (d / "manifest.json").write_text("{"), "not readable JSON"),
        (lambda d: _edit_manifest_file(d, schema_version=2), "schema_version=2 is not supported"),
        (
            lambda d: (d / "data" / "part-00001.parquet").write_text("junk"),
            "not a readable Parquet",
        ),
    ],
)
def test_unreadable_datasets_raise_dataset_error(
    dataset: FixtureDataset, breakage, message: str
) -> None:  # type: ignore[no-untyped-def]
    breakage(dataset.path)
    with pytest.raises(DatasetError, match=message):
        write_report(dataset.path)
    assert not (dataset.path / "report.html").exists()


def _edit_manifest_file(directory: Path, **values: object) -> None:
    path = directory / "manifest.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | values))


def test_cli_writes_the_report_and_strict_fails_on_warnings(
    dataset: FixtureDataset, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    add_report_arguments(parser)
    assert run_report(parser.parse_args([str(dataset.path)])) == 0
    assert (dataset.path / "report.html").is_file() and (dataset.path / "report.json").is_file()
    assert "with a serving section" in capsys.readouterr().err
    _edit_manifest(dataset, {"num_rows": 1})
    assert run_report(parser.parse_args([str(dataset.path)])) == 0
    assert run_report(parser.parse_args([str(dataset.path), "--strict"])) == 1
    assert "warning: manifest num_rows = 1" in capsys.readouterr().err


def test_rewriting_replaces_both_files_and_leaves_no_temporaries(dataset: FixtureDataset) -> None:
    write_report(dataset.path)
    write_report(dataset.path)
    names = sorted(p.name for p in dataset.path.iterdir() if p.is_file())
    assert names == ["centroids.npy", "manifest.json", "report.html", "report.json"]
    assert (dataset.path / "report.html").stat().st_mode & 0o777 == 0o644
