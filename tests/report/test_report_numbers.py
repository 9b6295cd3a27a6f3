"""report.json numbers equal what the fixture dataset holds (pandas is the oracle)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import numpy as np
import pytest
from report_dataset import EPS, NUM_CLUSTERS, FixtureDataset

from batchcraft.report import build_report

Reported = tuple[FixtureDataset, dict[str, Any]]


def test_funnel_equals_the_rows_and_the_manifest(reported: Reported) -> None:
    fixture, report = reported
    rows, rejects = fixture.rows, fixture.rejects
    total = report["funnel"]["total"]
    assert total == fixture.manifest["counts"]["total"]
    assert total["in"] == len(rows) + len(rejects)
    assert total["kept"] == int(rows.keep.sum())
    assert total["near_duplicates"] == int((rows.dup_kind == "near").sum()) > 0
    assert total["semantic_duplicates"] == int((rows.dup_kind == "semantic").sum()) > 0
    for source, counts in report["funnel"]["by_source"].items():
        assert counts["rejected"] == int((rejects.source == source).sum())
        assert counts["kept"] == int(rows[rows.source == source].keep.sum())
    assert report["funnel"]["rejected_by_reason"] == rejects.reason.value_counts().to_dict()
    stages = [{k: v for k, v in s.items()} for s in report["funnel"]["stages"]]
    assert stages == fixture.manifest["counts"]["stages"]
    reconciliation = report["funnel"]["reconciliation"]
    assert reconciliation["ok"] and reconciliation["checked"] > 50
    assert report["warnings"] == []


def test_cluster_sizes_samples_and_map(reported: Reported) -> None:
    fixture, report = reported
    rows, clusters = fixture.rows, report["clusters"]
    expected = rows.groupby("cluster").size().reindex(range(NUM_CLUSTERS), fill_value=0)
    assert clusters["sizes"] == expected.tolist()
    assert (
        clusters["kept"]
        == rows[rows.keep]
        .groupby("cluster")
        .size()
        .reindex(range(NUM_CLUSTERS), fill_value=0)
        .tolist()
    )
    assert clusters["largest"][0]["cluster"] == int(expected.idxmax())
    assert clusters["smallest"][0]["cluster"] == int(expected.idxmin())
    by_id = rows.set_index("id")
    for item in clusters["largest"] + clusters["smallest"]:
        assert item["samples"]
        for sample in item["samples"]:
            assert by_id.loc[sample["id"], "cluster"] == item["cluster"]
            assert sample["text"] == by_id.loc[sample["id"], "text"]
    assert len(clusters["map"]["x"]) == NUM_CLUSTERS


def test_what_if_table_and_histogram(reported: Reported) -> None:
    fixture, report = reported
    rows, duplicates = fixture.rows, report["duplicates"]
    compared = rows[rows.dup_kind != "exact"].max_sim.to_numpy(np.float32)
    assert duplicates["stage_rows"] == len(compared)
    for row in duplicates["what_if"]:
        assert row["rows_at_or_above"] == int((compared >= np.float32(1 - row["eps"])).sum())
    chosen = [row for row in duplicates["what_if"] if row["chosen"]]
    assert [row["eps"] for row in chosen] == [EPS]
    removed = int(rows.dup_kind.isin(["near", "semantic"]).sum())
    assert chosen[0]["actually_removed"] == removed <= chosen[0]["rows_at_or_above"]
    histogram = duplicates["histogram"]
    assert sum(
        sum(histogram[name]) for name in ("kept", "near", "semantic", "removed_other")
    ) == len(compared)
    assert sum(histogram["near"]) + sum(histogram["semantic"]) == removed


def test_duplicate_examples_pair_each_row_with_its_representative(reported: Reported) -> None:
    fixture, report = reported
    by_id = fixture.rows.set_index("id")
    examples = report["duplicates"]["examples"]
    assert {e["dup_kind"] for e in examples} == {"exact", "near", "semantic"}
    for example in examples:
        duplicate = by_id.loc[example["id"]]
        assert example["dup_of"] == duplicate.dup_of
        assert example["representative_text"] == by_id.loc[duplicate.dup_of, "text"]
        cosine = float(np.dot(duplicate.embedding, by_id.loc[duplicate.dup_of, "embedding"]))
        assert example["similarity"] == pytest.approx(cosine, abs=1e-3)


def test_concept_frequencies(reported: Reported) -> None:
    fixture, report = reported
    kept = fixture.rows[fixture.rows.keep]
    expected = Counter(concept for concepts in kept.concepts for concept in concepts)
    assert report["concepts"]["frequency_kept"] == dict(expected)
    lengths = kept.concepts.map(len)
    assert report["concepts"]["per_row_kept"] == np.bincount(lengths).tolist()
    assert report["concepts"]["top"][0]["rows"] == max(expected.values())


def test_run_section_reflects_the_manifest(reported: Reported) -> None:
    fixture, report = reported
    run = report["run"]
    assert run["embedding"]["model"] == "fixture-encoder"
    assert [t["stage"] for t in run["timings"]] == list(fixture.manifest["timings"])
    assert run["total_seconds"] == pytest.approx(sum(fixture.manifest["timings"].values()))
    assert [i["sha256"] for i in run["inputs"]] == [i["sha256"] for i in fixture.manifest["inputs"]]
    assert run["parameters"]["batch.size"] == 64


def test_serving_exposure_and_repeats(reported: Reported) -> None:
    fixture, report = reported
    serving = report["serving"]
    records = [
        json.loads(line)
        for path in sorted((fixture.path / "provenance").rglob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    served = [(r["job"], r["epoch"], i) for r in records for i in r["ids"]]
    assert serving["batches"] == len(records)
    assert serving["served_examples"] == len(served)
    assert serving["distinct_ids"] == len({i for _, _, i in served})
    assert serving["within_epoch_repeats"] == len(served) - len(set(served))
    source_of = fixture.rows.set_index("id").source
    web_share = sum(source_of[i] == "web" for _, _, i in served) / len(served)
    web = next(s for s in serving["by_source"] if s["source"] == "web")
    assert web["served_share"] == pytest.approx(web_share, abs=1e-6)
    assert sum(serving["by_cluster"]["served_share"]) == pytest.approx(1.0, abs=1e-4)
    assert set(serving["metrics"]) == {"jest", "uniform"}
    assert set(serving["metrics"]["jest"]) == {"learnability", "hardness"}
    assert serving["coverage_of_kept"] == 1.0


def test_report_does_not_depend_on_the_scan_batch_size(dataset: FixtureDataset) -> None:
    small, _ = build_report(dataset.path, batch_size=7)
    large, _ = build_report(dataset.path, batch_size=100_000)
    small.pop("generated_at"), large.pop("generated_at")
    assert json.dumps(small, sort_keys=True, default=str) == json.dumps(
        large, sort_keys=True, default=str
    )
