"""The curation job through Spark with the real bundled model, on the synthetic corpus."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pipeline_helpers import Curated, curate_synth

from batchcraft.dataset.arrays import to_matrix
from batchcraft.dataset.schema import DUP_KINDS
from batchcraft.pipeline.dedup.semantic import cluster_edges, greedy_keep, priority_order

pytestmark = [pytest.mark.spark, pytest.mark.model]


def test_every_exact_duplicate_is_found(curated: Curated) -> None:
    rows = {
        r["id"]: r for r in curated.rows().select(["id", "dup_of", "dup_kind", "keep"]).to_pylist()
    }
    exact = curated.corpus.duplicates_of_kind("exact")
    assert exact, "the synthetic corpus injects exact duplicates"
    for duplicate, original in exact.items():
        later, earlier = max(duplicate, original), min(duplicate, original)
        assert rows[later]["dup_kind"] == "exact" and not rows[later]["keep"], duplicate
        assert rows[later]["dup_of"] == earlier or rows[rows[later]["dup_of"]]["dup_kind"] is None


def test_semantic_decisions_match_brute_force_all_pairs(curated: Curated) -> None:
    kinds = pa.compute.fill_null(curated.rows().sort_by("id").column("dup_kind"), "")
    # Exact and MinHash duplicates were removed before semantic dedup ever saw them.
    table = curated.rows().filter(
        pa.compute.invert(pa.compute.is_in(kinds, pa.array(["exact", "minhash"])))
    )
    ids = table.column("id").to_pylist()
    order = priority_order(ids, table.column("centroid_sim").to_numpy(), "prototypical")
    vectors = to_matrix(table.column("embedding"))[order]
    edges, _ = cluster_edges(vectors, curated.config.threshold)  # all pairs, no clusters
    reference = greedy_keep(len(ids), edges)
    ordered_ids = [ids[i] for i in order]
    expected = {
        ordered_ids[i]: ordered_ids[reference.dup_of[i]] for i in np.flatnonzero(~reference.keep)
    }
    actual = {
        r["id"]: r["dup_of"]
        for r in table.select(["id", "dup_of", "keep"]).to_pylist()
        if not r["keep"]
    }
    assert len(expected) > 20, "the corpus must exercise semantic dedup"
    agreeing = sum(actual.get(row) == kept for row, kept in expected.items())
    assert agreeing / len(expected) >= 0.98, (agreeing, len(expected))
    assert len(set(actual) - set(expected)) / len(expected) <= 0.02
    found_pairs = len(set(zip(edges.source.tolist(), edges.target.tolist(), strict=True)))
    assert found_pairs >= len(expected)


def test_row_accounting_balances_and_matches_files(curated: Curated) -> None:
    counts = curated.manifest["counts"]
    lines = sum(
        len(Path(p).read_bytes().splitlines()) for p in curated.corpus.corpus_paths.values()
    )
    lines += len(curated.corpus.bad_path.read_bytes().splitlines())
    assert counts["total"]["in"] == lines
    for stage in counts["stages"]:
        assert stage["in"] == stage["kept"] + stage["duplicates"] + stage["rejected"], stage
        for source, c in stage["by_source"].items():
            assert c["in"] == c["kept"] + c["duplicates"] + c["rejected"], (stage["stage"], source)
    rows, rejects = curated.rows(), curated.rejects()
    assert rows.num_rows + rejects.num_rows == lines
    assert dict(Counter(rejects.column("reason").to_pylist())) == counts["rejected_by_reason"]
    kinds = Counter(rows.column("dup_kind").to_pylist())
    assert kinds["exact"] == counts["total"]["exact_duplicates"]
    stages = {stage["stage"]: stage for stage in counts["stages"]}
    assert kinds["near"] + kinds["semantic"] == stages["semantic_dedup"]["duplicates"]
    assert (
        sum(rows.column("keep").to_pylist())
        == counts["total"]["kept"]
        == curated.manifest["num_kept"]
    )
    assert len(set(rows.column("id").to_pylist())) == rows.num_rows


def test_bad_rows_are_in_rejects_with_their_reason(curated: Curated) -> None:
    rejects = curated.rejects().to_pylist()
    reasons = Counter(r["reason"] for r in rejects)
    for reason in ("missing_text", "invalid_utf8", "text_too_long", "malformed_record"):
        assert reasons[reason] >= 1, reason
    by_id = {r["id"]: r["reason"] for r in rejects if r["id"]}
    for row_id, reason in curated.corpus.bad_rows.items():
        if row_id in by_id:
            assert by_id[row_id] == reason
    assert all(r["file"] and r["raw"] and r["detail"] for r in rejects)


def test_dataset_follows_the_contract(curated: Curated) -> None:
    rows = curated.rows()
    dimension = curated.manifest["embedding"]["dim"]
    assert dimension == 384
    assert rows.schema.field("embedding").type == pa.list_(pa.float32(), dimension)
    norms = np.linalg.norm(to_matrix(rows.column("embedding")), axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-4)
    centroids = np.load(curated.out / "centroids.npy")
    assert centroids.shape == (curated.manifest["clustering"]["num_clusters"], dimension)
    assert rows.column("pair_embedding").null_count == 0
    removed = rows.filter(pa.compute.invert(rows.column("keep")))
    assert removed.column("dup_of").null_count == 0
    assert set(removed.column("dup_kind").to_pylist()) <= set(DUP_KINDS)  # minhash included
    annotated = sum(1 for c in rows.column("concepts").to_pylist() if c)
    assert annotated / rows.num_rows > 0.5, "zero-shot concepts annotate most rows"
    manifest = json.loads((curated.out / "manifest.json").read_text())
    assert [s["path"] for s in manifest["shards"]] == [
        "data/part-00000.parquet",
        "data/part-00001.parquet",
    ]
    assert all(len(i["sha256"]) == 64 for i in manifest["inputs"])


def test_rerun_gives_identical_rows(spark: Any, curated: Curated, tmp_path: Path) -> None:
    again = curate_synth(spark, curated.corpus, tmp_path / "again")
    assert again.rows().equals(curated.rows())
    assert again.rejects().equals(curated.rejects())
    np.testing.assert_array_equal(
        np.load(again.out / "centroids.npy"), np.load(curated.out / "centroids.npy")
    )


def test_chain_case_through_spark(spark: Any, tmp_path: Path) -> None:
    from batchcraft.pipeline import curate

    angle = np.arccos(0.95)  # A≈B and B≈C at 0.95, A≉C at 0.805, threshold 0.9
    chain = [[np.cos(k * angle), np.sin(k * angle)] + [0.0] * 6 for k in range(3)]
    rng = np.random.default_rng(0)
    filler = np.abs(rng.normal(size=(60, 8))) * np.array([0, 0, 1, 1, 1, 1, 1, 1])
    vectors = np.concatenate([np.array(chain), filler]).astype(np.float32)
    ids = ["a", "b", "c"] + [f"z{i:02d}" for i in range(60)]
    pq.write_table(
        pa.table(
            {
                "id": ids,
                "text": [f"text {i}" for i in ids],
                "vec": pa.array(vectors.tolist(), pa.list_(pa.float32())),
            }
        ),
        tmp_path / "c.parquet",
    )
    manifest = curate(
        str(tmp_path / "c.parquet"),
        str(tmp_path / "out"),
        spark=spark,
        id_column="id",
        embedding_column="vec",
        eps=0.1,
        num_clusters=1,
        keep_policy="smallest_id",
        near_dedup="none",
        write_report=False,
    )
    assert manifest["near_dedup"] == {"method": "none"}
    rows = {r["id"]: r for r in pq.read_table(tmp_path / "out" / "data").to_pylist()}
    assert (rows["a"]["keep"], rows["b"]["keep"], rows["c"]["keep"]) == (True, False, True)
    assert rows["b"]["dup_of"] == "a"
    assert rows["b"]["max_sim"] == pytest.approx(0.95, abs=1e-4)
    # The caller's session is left as it was: nothing the job cached stays cached.
    assert spark._jsparkSession.sharedState().cacheManager().isEmpty()


def test_failed_run_leaves_no_output(
    spark: Any, synth_corpus: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from batchcraft.pipeline.dedup import stage

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("executor lost")

    monkeypatch.setattr(stage, "semantic_dedup", explode)
    with pytest.raises(RuntimeError, match="executor lost"):
        curate_synth(spark, synth_corpus, tmp_path / "out", concepts_file=None)
    # no output and no staging; the work directory keeps the finished embed stage and the
    # k-means fit, whole, for the rerun (`pipeline.kept_stages`)
    assert [p.name for p in tmp_path.iterdir()] == [".out.work"]
    kept = sorted(p.name for p in (tmp_path / ".out.work").iterdir())
    assert [name.split("-")[0] for name in kept] == ["embed", "kmeans"]
    assert not any(".partial" in name for name in kept)


@pytest.mark.slow
def test_local_cluster_gives_the_same_result_as_local(curated: Curated, tmp_path: Path) -> None:
    corpus = curated.corpus
    out = tmp_path / "cluster"
    command = [
        sys.executable,
        "-m",
        "batchcraft",
        "curate",
        str(corpus.out_dir / "corpus"),
        str(corpus.out_dir / "bad"),
        "--out",
        str(out),
        "--id-column",
        "id",
        "--pair-column",
        "answer",
        "--label-column",
        "topic",
        "--reference-scores",
        "pairs",
        "--concepts",
        str(corpus.concepts_path),
        "--num-clusters",
        "8",
        "--num-shards",
        "2",
        "--no-report",
        "--master",
        "local-cluster[2,1,2048]",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    distributed = pq.read_table(out / "data").sort_by("id")
    local = curated.rows()
    decisions = ["id", "dup_of", "dup_kind", "keep", "cluster", "concepts"]
    assert distributed.select(decisions).equals(local.select(decisions))
    np.testing.assert_allclose(
        to_matrix(distributed.column("embedding")), to_matrix(local.column("embedding")), atol=1e-6
    )
    carried = ["label", "tags"]  # the input's columns cross executor JVMs with their types
    assert distributed.select(carried).equals(local.select(carried))
    np.testing.assert_allclose(
        distributed.column("ref_loss").to_numpy(), local.column("ref_loss").to_numpy(), atol=1e-4
    )
    assert json.loads((out / "manifest.json").read_text())["counts"] == curated.manifest["counts"]


def test_all_records_rejected_is_a_clear_error(spark: Any, tmp_path: Path) -> None:
    from batchcraft.errors import InputError
    from batchcraft.pipeline import curate

    (tmp_path / "c.jsonl").write_text('{"text": ""}\n{"text": null}\n')
    with pytest.raises(InputError, match=r"every record was rejected \({'missing_text': 2}\)"):
        curate(str(tmp_path / "c.jsonl"), str(tmp_path / "out"), spark=spark, write_report=False)
    assert not (tmp_path / "out").exists()


def test_report_of_a_real_run_agrees_with_the_manifest(curated: Curated, tmp_path: Path) -> None:
    import shutil

    from batchcraft.report import write_report

    copy = tmp_path / "dataset"
    shutil.copytree(curated.out, copy)
    summary = write_report(copy)
    assert summary.warnings == ()
    assert summary.num_input_rows == curated.manifest["counts"]["total"]["in"]
    assert summary.num_kept == curated.manifest["num_kept"]
    report = json.loads((copy / "report.json").read_text())
    assert report["warnings"] == []
    assert (copy / "report.html").stat().st_size > 10_000


def test_distributed_keep_rule_equals_the_driver_keep_rule(spark: Any) -> None:
    from batchcraft.pipeline import semantic_dedup

    rng = np.random.default_rng(1)
    base = rng.normal(size=(30, 16))
    vectors = np.concatenate(
        [
            base,
            base[:20] + 0.15 * rng.normal(size=(20, 16)),
            base[:10] + 0.3 * rng.normal(size=(10, 16)),
        ]
    )
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    rows = [
        (f"r{i:03d}", v.tolist(), i % 2, float(v @ vectors[0]), 1 - i % 2)
        for i, v in enumerate(vectors)
    ]
    frame = spark.createDataFrame(
        rows,
        "id string, embedding array<float>, cluster int, centroid_sim float, second_cluster int",
    )

    def decisions(max_driver_edges: int) -> list[tuple[str, str | None, bool]]:
        result = semantic_dedup(frame, eps=0.1, max_driver_edges=max_driver_edges)
        return sorted((r["id"], r["dup_of"], r["keep"]) for r in result.collect())

    on_driver, distributed = decisions(1_000_000), decisions(0)
    assert sum(not keep for _, _, keep in on_driver) >= 5, "the data must contain duplicates"
    assert distributed == on_driver


def test_empty_input_file_is_a_clear_error(spark: Any, tmp_path: Path) -> None:
    from batchcraft.errors import InputError
    from batchcraft.pipeline import curate

    (tmp_path / "empty.jsonl").write_bytes(b"")
    with pytest.raises(InputError, match=r"hold no records"):
        curate(
            str(tmp_path / "empty.jsonl"), str(tmp_path / "out"), spark=spark, write_report=False
        )
    assert not (tmp_path / "out").exists()
