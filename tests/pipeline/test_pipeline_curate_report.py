"""The job writes the dataset; `batchcraft.curation.curate` (and the command) also write its
report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.spark


def write_corpus(path: Path) -> None:
    rng = np.random.default_rng(5)
    records = [
        {"id": f"r{i:03d}", "text": f"text {i}", "vec": rng.normal(size=8).round(4).tolist()}
        for i in range(60)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def test_the_job_writes_no_report_and_curation_curate_writes_it(spark: Any, tmp_path: Path) -> None:
    from batchcraft.curation import curate
    from batchcraft.pipeline import curate as run_job

    write_corpus(tmp_path / "c.jsonl")
    params: dict[str, Any] = {"id_column": "id", "embedding_column": "vec", "num_clusters": 2}

    job_manifest = run_job(str(tmp_path / "c.jsonl"), str(tmp_path / "job"), spark=spark, **params)
    assert job_manifest["parameters"]["write_report"] is True
    assert not (tmp_path / "job" / "report.html").exists(), "the job writes the dataset only"

    manifest = curate(str(tmp_path / "c.jsonl"), str(tmp_path / "out"), spark=spark, **params)
    assert (tmp_path / "out" / "report.html").is_file()
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["warnings"] == []
    assert manifest["counts"] == job_manifest["counts"]

    curate(
        str(tmp_path / "c.jsonl"),
        str(tmp_path / "quiet"),
        spark=spark,
        write_report=False,
        **params,
    )
    assert not (tmp_path / "quiet" / "report.html").exists()
