"""Resumable runs: a run killed during semantic dedup is rerun from its kept embeddings,
with the output of an uninterrupted run; a changed parameter re-embeds only when the
embed stage depends on it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from pipeline_helpers import encoded_texts, recording_encoder

pytestmark = pytest.mark.spark

SETTINGS: dict[str, Any] = {"id_column": "id", "num_clusters": 4, "write_report": False}


def _corpus(directory: Path) -> Path:
    directory.mkdir()
    topics = ["rivers in spring", "the price of bread", "a chess opening", "rain on the roof"]
    records = [
        {"id": f"r{i}", "text": f"a short note {i % 37} about {topics[i % 4]}, copy {i // 37}"}
        for i in range(150)
    ]
    records.append(dict(records[5], id="dup"))  # an exact duplicate
    (directory / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return directory


def _rows(out: Path) -> Any:
    return pq.read_table(out / "data").sort_by("id")


def test_a_run_killed_in_semantic_dedup_resumes_from_its_embeddings(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from batchcraft.cli import summary
    from batchcraft.pipeline import curate
    from batchcraft.pipeline.embedding import stage as embedding_stage

    corpus, work = _corpus(tmp_path / "corpus"), tmp_path / "work"
    flags = ["--id-column", "id", "--num-clusters", "4", "--no-report", "--master", "local[1]"]
    command = [sys.executable, "-m", "batchcraft.cli", "curate", str(corpus), "--out"]
    killed = subprocess.run(
        [*command, str(tmp_path / "out"), "--work-dir", str(work), *flags],
        capture_output=True,
        text=True,
        env={**os.environ, "BATCHCRAFT_TEST_KILL_AT": "semantic_dedup"},
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not (tmp_path / "out").exists()
    assert sorted(p.name.split("-")[0] for p in work.iterdir()) == ["embed", "kmeans"]

    whole = curate(str(corpus), str(tmp_path / "whole"), spark=spark, **SETTINGS)
    assert whole["stages_reused"] == []
    log_dir = tmp_path / "encoded"
    log_dir.mkdir()
    monkeypatch.setattr(embedding_stage, "cached_encoder", recording_encoder(log_dir))
    resumed = curate(
        str(corpus), str(tmp_path / "out"), spark=spark, work_dir=str(work), **SETTINGS
    )

    assert resumed["stages_reused"] == ["embed", "cluster"] and encoded_texts(log_dir) == []
    lines = summary(resumed, str(tmp_path / "out")).splitlines()
    assert "  reused stages     embed, cluster" in lines
    centroids = [np.load(root / "centroids.npy") for root in (tmp_path / "out", tmp_path / "whole")]
    assert np.array_equal(*centroids)
    assert _rows(tmp_path / "out").equals(_rows(tmp_path / "whole"))
    assert resumed["counts"] == whole["counts"]
    rejects = [
        pq.read_table(root / "rejects").sort_by("id")
        for root in (tmp_path / "out", tmp_path / "whole")
    ]
    assert rejects[0].equals(rejects[1])


def test_only_a_parameter_the_embed_stage_reads_re_embeds(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from batchcraft.pipeline import curate
    from batchcraft.pipeline.embedding import stage as embedding_stage

    corpus, work, log_dir = _corpus(tmp_path / "corpus"), str(tmp_path / "work"), tmp_path / "log"
    log_dir.mkdir()
    monkeypatch.setattr(embedding_stage, "cached_encoder", recording_encoder(log_dir))

    def run(name: str, **params: Any) -> dict[str, Any]:
        settings = {**SETTINGS, **params}
        return curate(str(corpus), str(tmp_path / name), spark=spark, work_dir=work, **settings)

    assert run("first")["stages_reused"] == []
    first_encoded = len(encoded_texts(log_dir))
    other_eps = run("eps", eps=0.3, num_shards=3)
    assert other_eps["stages_reused"] == ["embed", "cluster"]  # no k-means parameter changed
    fewer_clusters = run("clusters", num_clusters=2)
    assert fewer_clusters["stages_reused"] == ["embed"]  # refitted, not re-embedded
    assert len(np.load(tmp_path / "clusters" / "centroids.npy")) == 2
    assert len(encoded_texts(log_dir)) == first_encoded  # nothing encoded again
    assert run("batch", encode_batch_size=7)["stages_reused"] == []  # the encoder's setting
    (corpus / "b.jsonl").write_text(json.dumps({"id": "new", "text": "one more note"}) + "\n")
    assert run("grown")["stages_reused"] == []  # another input


def test_the_embed_key_follows_the_model_and_inputs_not_eps(tmp_path: Path) -> None:
    from batchcraft.pipeline.config import CurateConfig
    from batchcraft.pipeline.read.discovery import discover
    from batchcraft.pipeline.resume import embed_key, work_dir_of

    corpus = _corpus(tmp_path / "corpus")
    config = CurateConfig(inputs=(str(corpus),), out=str(tmp_path / "out"))
    files = discover(config.inputs, None, {})
    key = embed_key(config, files, "/models/a")
    assert embed_key(CurateConfig(**{**config.__dict__, "eps": 0.3}), files, "/models/a") == key
    assert embed_key(config, files, "/models/b") != key
    (corpus / "a.jsonl").write_text('{"id": "x", "text": "changed"}\n')
    assert embed_key(config, discover(config.inputs, None, {}), "/models/a") != key
    assert work_dir_of(config) == tmp_path / ".out.work"
    assert work_dir_of(CurateConfig(inputs=("x",), out="s3://bucket/out")) is None
