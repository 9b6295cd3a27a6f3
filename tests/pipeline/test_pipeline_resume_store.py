"""Resumable runs with the work directory in an object store (moto's S3-compatible server on
loopback): a run killed during semantic dedup is rerun from the embeddings it kept in the
bucket, with the output of an uninterrupted run, and a killed write is never read."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pipeline_helpers import encoded_texts, recording_encoder
from s3_server import S3Server
from test_pipeline_resume import SETTINGS, _corpus, _rows

from batchcraft.storage import list_files, read_bytes, resolve, write_bytes

pytestmark = [pytest.mark.spark, pytest.mark.model, pytest.mark.slow]


def _keys(url: str) -> list[str]:
    root = resolve(url)
    return sorted(file.path[len(root.path) + 1 :] for file in list_files(root))


def test_a_run_killed_in_semantic_dedup_resumes_from_embeddings_kept_in_a_bucket(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_server: S3Server
) -> None:
    from batchcraft.pipeline import curate
    from batchcraft.pipeline.embedding import stage as embedding_stage

    corpus, work = _corpus(tmp_path / "corpus"), f"s3://{s3_server.new_bucket()}/runs/work"
    flags = ["--id-column", "id", "--num-clusters", "4", "--no-report", "--master", "local[1]"]
    command = [sys.executable, "-m", "batchcraft.cli", "curate", str(corpus), "--out"]
    killed = subprocess.run(  # the store's endpoint and keys: the AWS_* variables
        [*command, str(tmp_path / "out"), "--work-dir", work, *flags],
        capture_output=True,
        text=True,
        env={**os.environ, "BATCHCRAFT_TEST_KILL_AT": "semantic_dedup"},
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not (tmp_path / "out").exists()
    kept = _keys(work)
    records = [key for key in kept if key.endswith(".json")]
    assert [key.split("-")[0] for key in records] == ["embed", "kmeans"]
    data = [json.loads(read_bytes(resolve(f"{work}/{key}")))["data"] for key in records]
    assert all(k in records or k.startswith(tuple(data)) for k in kept)
    record = records[0]
    # a write killed half-way: files under a data prefix no record names, its owner gone
    dead = f"{work}/{record.removesuffix('.json')}.data-elsewhere-1-0000"
    write_bytes(resolve(f"{dead}/.owner"), f"{os.uname().nodename} 999999999\n".encode())
    write_bytes(resolve(f"{dead}/part-00000.parquet"), b"torn")

    whole = curate(str(corpus), str(tmp_path / "whole"), spark=spark, **SETTINGS)
    log_dir = tmp_path / "encoded"
    log_dir.mkdir()
    monkeypatch.setattr(embedding_stage, "cached_encoder", recording_encoder(log_dir))
    resumed = curate(
        str(corpus),
        str(tmp_path / "out"),
        spark=spark,
        work_dir=work,
        storage_options=s3_server.options,  # executors started before the server: no AWS_*
        **SETTINGS,
    )

    assert resumed["stages_reused"] == ["embed", "cluster"] and encoded_texts(log_dir) == []
    assert _rows(tmp_path / "out").equals(_rows(tmp_path / "whole"))
    assert resumed["counts"] == whole["counts"]
    assert _keys(work) == kept  # the torn write is gone, unread


def test_a_bucket_keeps_the_two_outputs_of_a_stage_used_last(
    spark: Any, s3_server: S3Server
) -> None:
    """Every changed input used to leave one more copy of its embeddings in the bucket."""
    from batchcraft.pipeline.config import CurateConfig
    from batchcraft.pipeline.resume import KEPT_PER_STAGE, stage_store

    work = f"s3://{s3_server.new_bucket()}/work"
    config = CurateConfig(["in.jsonl"], "out", work_dir=work, storage_options=s3_server.options)
    store = stage_store(config)
    assert store is not None and KEPT_PER_STAGE == 2
    frames = {key: spark.createDataFrame([(key, 1.0)], "id string, x double") for key in "abcd"}
    for key in "abc":
        store.save(frames[key], "embed", key)
    assert _records(work) == ["embed-b.json", "embed-c.json"]
    assert store.load(spark, "embed", "a") is None
    assert store.load(spark, "embed", "b").collect()[0]["id"] == "b"  # a reuse is a use
    store.save(frames["d"], "embed", "d")
    assert _records(work) == ["embed-b.json", "embed-d.json"]
    named = {json.loads(read_bytes(resolve(f"{work}/{r}")))["data"] for r in _records(work)}
    assert {key.split("/")[0] for key in _keys(work) if not key.endswith(".json")} == named


def _records(url: str) -> list[str]:
    return [key for key in _keys(url) if key.endswith(".json")]
