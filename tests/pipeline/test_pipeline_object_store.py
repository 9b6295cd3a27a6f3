"""Curation where the data lives: a gzipped JSONL corpus in an S3-compatible server (moto's,
on loopback) curated into the same server, served and reported from it, decides exactly
what curating the same files from a local disk decides."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from s3_server import S3Server

from batchcraft.batcher.datasets import DatasetRegistry
from batchcraft.batcher.served_dataset import CuratedDataset
from batchcraft.curation import curate
from batchcraft.dataset.remote import local_dataset
from batchcraft.service.client import BatchClient
from batchcraft.service.server import ServerConfig, create_server
from batchcraft.storage import list_files, read_bytes, resolve, write_bytes

pytestmark = [pytest.mark.spark, pytest.mark.model, pytest.mark.slow]
DECISIONS = ["id", "source", "text", "keep", "dup_kind", "dup_of", "cluster"]


def _gzipped_corpus(synth_corpus: Any, local: Path, bucket_url: str) -> None:
    """The synthetic corpus (bad rows included) as .jsonl.gz files, on disk and in the bucket."""
    local.mkdir()
    for path in [*synth_corpus.corpus_paths.values(), synth_corpus.bad_path]:
        packed = gzip.compress(path.read_bytes())
        (local / f"{path.name}.gz").write_bytes(packed)
        write_bytes(resolve(f"{bucket_url}/{path.name}.gz"), packed)


def _settings(**more: Any) -> dict[str, Any]:
    return {"id_column": "id", "num_clusters": 8, "num_shards": 2, **more}


def _rows(directory: Path) -> pa.Table:
    return pq.read_table(directory / "data").sort_by("id")


def test_curating_from_and_into_s3_decides_as_curating_locally_and_serves_from_it(
    spark: Any, synth_corpus: Any, s3_server: S3Server, tmp_path: Path
) -> None:
    bucket = s3_server.new_bucket()
    _gzipped_corpus(synth_corpus, tmp_path / "corpus", f"s3://{bucket}/corpus")
    local_out = tmp_path / "curated"
    local_manifest = curate(
        str(tmp_path / "corpus"), str(local_out), spark=spark, **_settings(write_report=False)
    )
    out = f"s3://{bucket}/curated/news"
    with pytest.MonkeyPatch.context() as environment:  # the job and its report need no more
        environment.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")  # than storage_options
        manifest = curate(
            f"s3://{bucket}/corpus/",
            out,
            spark=spark,
            **_settings(storage_options=s3_server.options),
        )

    assert manifest["counts"] == local_manifest["counts"]
    assert [f["path"] for f in manifest["inputs"]] == [
        f"s3://{bucket}/corpus/{f['path'].rsplit('/', 1)[1]}" for f in local_manifest["inputs"]
    ]
    assert [f["bytes"] for f in manifest["inputs"]] == [
        f["bytes"] for f in local_manifest["inputs"]
    ]
    assert manifest["parameters"]["storage_options"]["secret_key"] == "<redacted>"
    published = {f.path.split("/curated/news/", 1)[1] for f in list_files(resolve(out))}
    assert {"manifest.json", "centroids.npy", "rejects/part-00000.parquet"} <= published
    assert {"report.html", "report.json"} <= published, "the report is put beside the dataset"
    assert not [f for f in list_files(resolve(f"s3://{bucket}/curated")) if "staging" in f.path]

    copy = local_dataset(out)  # serve and report read a local copy of the published dataset
    remote_rows, rows = _rows(copy), _rows(local_out)
    assert remote_rows.select(DECISIONS).equals(rows.select(DECISIONS))
    assert np.allclose(
        np.stack(remote_rows["embedding"].to_numpy(zero_copy_only=False)),
        np.stack(rows["embedding"].to_numpy(zero_copy_only=False)),
        atol=1e-6,
    )
    rejects = pq.read_table(copy / "rejects").select(["id", "reason", "record", "source"])
    assert rejects.equals(pq.read_table(local_out / "rejects").select(rejects.column_names))
    report = json.loads(read_bytes(resolve(f"{out}/report.json")))
    assert report["funnel"]["total"]["kept"] == local_manifest["counts"]["total"]["kept"]

    registry = DatasetRegistry([CuratedDataset.open(copy, "news")])
    server = create_server(registry, ServerConfig(fsync=False)).start()  # type: ignore[arg-type]
    try:
        with BatchClient(
            f"127.0.0.1:{server.port}", "news", batch_size=16, columns=["id"]
        ) as client:
            served = [row_id for batch in client for row_id in batch["id"]]
    finally:
        server.stop(grace=0)
    kept = rows.filter(rows["keep"])["id"].to_pylist()
    assert sorted(served) == sorted(kept), "one epoch serves every kept row once"


def test_executors_in_their_own_jvms_read_and_write_the_store_with_storage_options_alone(
    synth_corpus: Any, s3_server: S3Server, tmp_path: Path
) -> None:
    """``local-cluster`` mode (separate executor JVMs and Python workers), the store named
    only in the config file's ``storage_options`` and no ``AWS_*`` variable anywhere: each
    executor reads its own chunks from the bucket and writes its shards into it."""
    import os
    import subprocess
    import sys

    bucket = s3_server.new_bucket()
    _gzipped_corpus(synth_corpus, tmp_path / "corpus", f"s3://{bucket}/corpus")
    options = "".join(f"{key} = {json.dumps(value)}\n" for key, value in s3_server.options.items())
    config = tmp_path / "curate.toml"
    config.write_text(f'[curate]\nid_column = "id"\n[curate.storage_options]\n{options}')
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    out = f"s3://{bucket}/curated"
    command = [sys.executable, "-m", "batchcraft", "curate", f"s3://{bucket}/corpus/", "--out", out,
               "--config", str(config), "--num-clusters", "8", "--num-shards", "2", "--no-report",
               "--master", "local-cluster[2,1,2048]"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, env=environment)
    assert result.returncode == 0, result.stderr[-3000:]

    manifest = json.loads(read_bytes(resolve(f"{out}/manifest.json")))
    assert manifest["counts"]["total"]["rejected"] == len(synth_corpus.bad_rows)
    assert len(manifest["shards"]) == 2
    copy = local_dataset(out)
    rows = _rows(copy)
    expected = {
        json.loads(line)["id"]
        for path in synth_corpus.corpus_paths.values()
        for line in path.read_text().splitlines()
    }
    assert sorted(rows["id"].to_pylist()) == sorted(expected), "every chunk was read once"
