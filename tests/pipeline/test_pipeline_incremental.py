"""Incremental curation: ``curate B --against A`` removes from B what ``curate A∪B`` would
remove against A's rows, never changes A, and rejects B's rows that reuse A's ids."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from incremental_corpus import SETTINGS, corpora, file_hashes

pytestmark = pytest.mark.spark


@dataclass(frozen=True)
class Runs:
    a: Path  # curated A
    delta: Path  # B curated against A
    union: Path  # A and B curated in one run
    a_before: dict[str, str]  # A's file hashes before B was curated against it
    delta_manifest: dict[str, Any]


@pytest.fixture(scope="module")
def runs(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    from batchcraft.pipeline import curate

    root = tmp_path_factory.mktemp("incremental")
    a_corpus, b_corpus = corpora(root / "corpora")
    curate(str(a_corpus), str(root / "A"), spark=spark, **SETTINGS)
    before = file_hashes(root / "A")
    delta = curate(
        str(b_corpus), str(root / "delta"), spark=spark, against=[str(root / "A")], **SETTINGS
    )
    curate([str(a_corpus), str(b_corpus)], str(root / "union"), spark=spark, **SETTINGS)
    return Runs(root / "A", root / "delta", root / "union", before, delta)


def _rows(directory: Path) -> dict[str, dict[str, Any]]:
    table = pq.read_table(
        directory / "data", columns=["id", "keep", "dup_of", "dup_kind", "embedding"]
    )
    return {row["id"]: row for row in table.to_pylist()}


def test_a_is_never_changed(runs: Runs) -> None:
    assert file_hashes(runs.a) == runs.a_before


def test_no_pair_the_union_run_removes_as_exact_or_minhash_is_kept_in_a_and_delta(
    runs: Runs,
) -> None:
    union, a, delta = _rows(runs.union), _rows(runs.a), _rows(runs.delta)
    kept = {i for rows in (a, delta) for i, row in rows.items() if row["keep"]}
    pairs = [
        (i, row["dup_of"], row["dup_kind"])
        for i, row in union.items()
        if row["dup_kind"] in ("exact", "minhash")
    ]
    across = [p for p in pairs if (p[0] in a) != (p[1] in a)]
    assert len(across) >= 50, "the corpus plants exact and MinHash copies of A's rows in B"
    assert [p for p in pairs if p[0] in kept and p[1] in kept] == []
    against = {i: row for i, row in delta.items() if row["dup_of"] in a}
    assert {row["dup_kind"] for row in against.values()} >= {"exact", "minhash"}
    assert all(a[row["dup_of"]]["keep"] for row in against.values())


def test_semantic_duplicates_of_a_are_caught_as_a_brute_force_finds_them(runs: Runs) -> None:
    a, delta = _rows(runs.a), _rows(runs.delta)
    threshold = runs.delta_manifest["semantic_dedup"]["threshold"]
    a_kept = [row for row in a.values() if row["keep"]]
    b_rows = list(delta.values())
    left = np.asarray([row["embedding"] for row in a_kept], dtype=np.float32)
    right = np.asarray([row["embedding"] for row in b_rows], dtype=np.float32)
    found = np.argwhere(left @ right.T >= threshold)
    assert len(found) >= 35, "the corpus plants 40 semantic near-duplicates of A's rows"
    caught = sum(not b_rows[j]["keep"] for _, j in found)
    assert caught / len(found) >= 0.98
    semantic = [r for r in b_rows if r["dup_kind"] in ("near", "semantic") and r["dup_of"] in a]
    assert len(semantic) >= 35


def test_ids_of_a_are_rejected_and_the_manifest_names_a(runs: Runs) -> None:
    rejects = pq.read_table(runs.delta / "rejects").to_pylist()
    known = sorted(r["id"] for r in rejects if r["reason"] == "duplicate_id")
    assert known == sorted(f"a{i}" for i in range(100, 110))
    assert all(str(runs.a) in r["detail"] for r in rejects if r["reason"] == "duplicate_id")
    section = runs.delta_manifest["incremental"]
    (predecessor,) = section["predecessors"]
    assert predecessor["path"] == str(runs.a) and len(predecessor["manifest_sha256"]) == 64
    removed = section["removed_against_previous"]
    a = _rows(runs.a)
    copied = sum(a[f"a{i}"]["keep"] for i in range(30))  # copies of A's kept rows
    assert removed["duplicate_id"] == 10 and removed["exact"] == copied >= 25
    assert removed["minhash"] >= 25
    stages = {s["stage"]: s for s in runs.delta_manifest["counts"]["stages"]}
    assert stages["exact_dedup"]["against_previous"] == copied
    assert stages["exact_dedup"]["duplicates"] == copied + 10  # and 10 within B
    centroids = [np.load(d / "centroids.npy") for d in (runs.a, runs.delta)]
    assert np.array_equal(*centroids)


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    from batchcraft.cli import main

    code = main(argv)
    return code, capsys.readouterr().err.strip().splitlines()


def test_a_predecessor_without_manifest_or_that_is_the_output_stops_the_run(
    runs: Runs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = str(runs.a.parent / "corpora" / "b")
    (tmp_path / "empty").mkdir()
    flags = ["--id-column", "id", "--embedding-column", "vec", "--no-report"]
    out = tmp_path / "out"
    code, lines = _cli(
        ["curate", corpus, "--out", str(out), "--against", str(tmp_path / "empty"), *flags], capsys
    )
    assert code == 2 and len(lines) == 1 and "holds no manifest.json" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]

    code, lines = _cli(
        ["curate", corpus, "--out", str(runs.a), "--against", str(runs.a), "--overwrite", *flags],
        capsys,
    )
    assert code == 2 and len(lines) == 1 and "is the run's own --out" in lines[0]
    assert file_hashes(runs.a) == runs.a_before


def test_a_predecessor_of_another_model_or_dimension_stops_the_run(
    runs: Runs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json
    import shutil

    from batchcraft.pipeline.embedding.sentence_encoder import model_name

    corpus = str(runs.a.parent / "corpora" / "b")
    out = tmp_path / "out"
    flags = ["--id-column", "id", "--no-report", "--out", str(out)]
    code, lines = _cli(["curate", corpus, "--against", str(runs.a), *flags], capsys)
    assert code == 2 and len(lines) == 1 and "was embedded by 'precomputed'" in lines[0]

    other = tmp_path / "other"
    shutil.copytree(runs.a, other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["embedding"].update(model=model_name(None), dim=768)
    (other / "manifest.json").write_text(json.dumps(manifest))
    code, lines = _cli(["curate", corpus, "--against", str(other), *flags], capsys)
    assert code == 2 and len(lines) == 1 and "holds 768-d embeddings" in lines[0]
    assert not out.exists()


def test_precomputed_vectors_of_another_dimension_stop_the_run_with_nothing_written(
    spark: Any, runs: Runs, tmp_path: Path
) -> None:
    import json

    from batchcraft.errors import InputError
    from batchcraft.pipeline import curate

    rows = [{"id": f"n{i}", "text": f"a new text {i}", "vec": [1.0] + [0.5] * 7} for i in range(20)]
    (tmp_path / "new.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(InputError, match="holds 16-d embeddings, this run's are 8-d"):
        curate(
            str(tmp_path / "new.jsonl"),
            str(tmp_path / "out"),
            spark=spark,
            against=[str(runs.a)],
            **SETTINGS,
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.jsonl"]


def test_the_report_of_delta_shows_what_was_removed_against_a(runs: Runs) -> None:
    import json

    from batchcraft.report import write_report

    write_report(str(runs.delta))
    report = json.loads((runs.delta / "report.json").read_text())
    against = report["funnel"]["against_previous"]
    removed = runs.delta_manifest["incremental"]["removed_against_previous"]
    assert against["removed"] == {kind: removed.get(kind, 0) for kind in against["removed"]}
    a_texts = {r["id"]: r["text"] for r in pq.read_table(runs.a / "data").to_pylist()}
    kinds = {example["kind"] for example in against["examples"]}
    assert {"exact", "minhash"} <= kinds
    for example in against["examples"]:
        assert a_texts[example["dup_of"]].startswith(example["previous_text"].rstrip("…"))
    page = (runs.delta / "report.html").read_text()
    assert "Removed against earlier datasets" in page and str(runs.a) in page
    assert report["warnings"] == []


def test_a_predecessor_in_an_object_store_decides_as_a_local_one(
    spark: Any, runs: Runs, s3_server: Any, tmp_path: Path
) -> None:
    from batchcraft.pipeline import curate
    from batchcraft.storage import resolve, write_bytes

    options = s3_server.options
    url = f"s3://{s3_server.new_bucket()}/curated/A"
    for path in runs.a.rglob("*"):
        if path.is_file():
            target = resolve(f"{url}/{path.relative_to(runs.a)}", options)
            write_bytes(target, path.read_bytes())
    b_corpus = runs.a.parent / "corpora" / "b"
    manifest = curate(
        str(b_corpus),
        str(tmp_path / "delta"),
        spark=spark,
        against=[url],
        storage_options=options,
        **SETTINGS,
    )
    columns = ["id", "keep", "dup_kind", "dup_of", "cluster"]
    remote, local = (
        pq.read_table(d / "data", columns=columns).sort_by("id")
        for d in (tmp_path / "delta", runs.delta)
    )
    assert remote.equals(local)
    (predecessor,) = manifest["incremental"]["predecessors"]
    local_predecessor = runs.delta_manifest["incremental"]["predecessors"][0]
    assert predecessor["path"] == url
    assert predecessor["manifest_sha256"] == local_predecessor["manifest_sha256"]
    assert manifest["incremental"]["minhash_keys_read_from"] == [url]  # by the executors


def test_recluster_refits_k_means_on_the_union_and_says_so(
    spark: Any, runs: Runs, tmp_path: Path
) -> None:
    from batchcraft.pipeline import curate

    b_corpus = runs.a.parent / "corpora" / "b"
    manifest = curate(
        str(b_corpus),
        str(tmp_path / "delta"),
        spark=spark,
        against=[str(runs.a)],
        recluster=True,
        **SETTINGS,
    )
    section = manifest["incremental"]
    assert section["recluster"] is True and section["centroids_from"] == "refit on the union"
    assert not np.array_equal(
        np.load(tmp_path / "delta" / "centroids.npy"), np.load(runs.a / "centroids.npy")
    )
    removed = runs.delta_manifest["incremental"]["removed_against_previous"]
    for kind in ("duplicate_id", "exact", "minhash"):  # decided before clustering
        assert section["removed_against_previous"][kind] == removed[kind]
    delta = _rows(tmp_path / "delta")
    semantic = [
        r
        for r in delta.values()
        if r["dup_kind"] in ("near", "semantic") and r["dup_of"].startswith("a")
    ]
    assert len(semantic) >= 35


def test_a_and_its_delta_served_as_one_dataset_serve_no_pair_the_union_run_removes(
    runs: Runs, caplog: pytest.LogCaptureFixture
) -> None:
    """``serve --name news=A,DELTA``: every kept row of both, once; no exact or MinHash
    pair of the union run; no warning, since the delta was curated against A."""
    import logging

    from batchcraft.batcher.datasets import DatasetRegistry
    from batchcraft.batcher.served_dataset import CuratedDataset
    from batchcraft.service import BatchClient, ServerConfig, create_server

    event = "dataset_part_not_curated_against"
    with caplog.at_level(logging.WARNING, logger="batchcraft.batcher"):
        dataset = CuratedDataset.open([runs.a, runs.delta], "news")
    assert not [r for r in caplog.records if getattr(r.msg, "name", "") == event]
    server = create_server(DatasetRegistry([dataset]), ServerConfig(fsync=False)).start()
    try:
        with BatchClient(f"127.0.0.1:{server.port}", "news", batch_size=64, columns=["id"]) as c:
            served = [i for batch in c for i in batch["id"]]
    finally:
        server.stop(grace=0)
    a, delta, union = _rows(runs.a), _rows(runs.delta), _rows(runs.union)
    kept = [i for rows in (a, delta) for i, row in rows.items() if row["keep"]]
    assert sorted(served) == sorted(kept)
    removed = {
        (i, row["dup_of"]) for i, row in union.items() if row["dup_kind"] in ("exact", "minhash")
    }
    served_set = set(served)
    assert [pair for pair in removed if set(pair) <= served_set] == []
    with caplog.at_level(logging.WARNING, logger="batchcraft.batcher"):
        CuratedDataset.open([runs.delta, runs.a])  # A was not curated against the delta
    assert [r for r in caplog.records if getattr(r.msg, "name", "") == event]


def test_the_embed_key_changes_with_a_republished_predecessor_not_with_recluster(
    tmp_path: Path,
) -> None:
    import json

    from batchcraft.dataset.schema import SCHEMA_VERSION
    from batchcraft.pipeline.config import CurateConfig
    from batchcraft.pipeline.incremental.predecessors import open_predecessors
    from batchcraft.pipeline.read.discovery import discover
    from batchcraft.pipeline.resume import embed_key

    previous = tmp_path / "prev"
    previous.mkdir()
    np.save(previous / "centroids.npy", np.eye(4, dtype=np.float32))
    manifest = {"schema_version": SCHEMA_VERSION, "embedding": {"model": "precomputed", "dim": 4}}
    (tmp_path / "new.jsonl").write_text('{"id": "n", "text": "t", "vec": [1, 0, 0, 0]}\n')
    config = CurateConfig(
        inputs=(str(tmp_path / "new.jsonl"),),
        out=str(tmp_path / "out"),
        embedding_column="vec",
        against=(str(previous),),
    )
    files = discover(config.inputs, None, {})

    def key(config: CurateConfig, num_rows: int) -> str:
        (previous / "manifest.json").write_text(json.dumps({**manifest, "num_rows": num_rows}))
        fingerprints = [p.fingerprint for p in open_predecessors(config, None)]
        return embed_key(config, files, None, fingerprints)

    first = key(config, 10)
    assert key(config, 10) == first
    assert key(CurateConfig(**{**config.__dict__, "recluster": True}), 10) == first
    assert key(config, 11) != first  # republished: other rows may reach the embed stage
    assert embed_key(config, files, None) != first
