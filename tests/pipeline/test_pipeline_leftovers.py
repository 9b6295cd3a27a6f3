"""Hostile input and crash leftovers: a deeply nested JSONL record is a reject, not an abort;
a killed run's staging directory is removed by the next run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from batchcraft.pipeline.read.readers import MAX_JSON_DEPTH, _decode_json, json_depth
from batchcraft.pipeline.read.validate import Reject
from batchcraft.pipeline.write.files import OWNER_FILE, StagedOutput, remove_stale_leftovers


def test_a_record_nested_past_the_decoder_is_a_malformed_record() -> None:
    deep = b'{"id": "deep", "text": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    rejected = _decode_json(deep)
    assert isinstance(rejected, Reject) and rejected.reason == "malformed_record"
    assert "nested deeper" in rejected.detail


def test_a_record_nested_past_the_limit_is_rejected_and_one_within_is_kept() -> None:
    def nested(depth: int) -> bytes:
        return b'{"id": "a", "text": "t", "x": ' + b"[" * depth + b"]" * depth + b"}"

    assert json_depth({"x": [[1]]}) == 3
    assert isinstance(_decode_json(nested(MAX_JSON_DEPTH - 1)), dict)
    assert isinstance(_decode_json(nested(MAX_JSON_DEPTH + 5)), Reject)


def test_the_staging_directory_of_a_killed_run_is_removed_by_the_next(tmp_path: Path) -> None:
    out = tmp_path / "out"
    script = (
        "import os, sys\n"
        "from batchcraft.pipeline.write.files import StagedOutput\n"
        f"staged = StagedOutput({str(out)!r}).__enter__()\n"
        "print(staged.staging, flush=True)\n"
        "os._exit(0)  # killed: no __exit__ runs\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    orphan = Path(result.stdout.strip())
    assert orphan.is_dir() and (orphan / OWNER_FILE).exists()
    with StagedOutput(out) as staged:  # a new run: the orphan goes, its own staging stays
        assert not orphan.exists() and staged.staging.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert not (out / OWNER_FILE).exists()


def test_a_live_runs_staging_directory_is_left_alone(tmp_path: Path) -> None:
    out = tmp_path / "out"
    live = tmp_path / ".out.staging-live"
    live.mkdir()
    (live / OWNER_FILE).write_text(f"{os.uname().nodename} {os.getpid()}\n")
    assert remove_stale_leftovers(out) == [] and live.is_dir()
