"""What a server checks, and cleans, as it starts: a checkpoint or provenance directory it
cannot write is refused (issue 17, defect 4), and temporaries that a server killed
mid-save left among the checkpoints are removed (issue 17, defect 9)."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchcraft.batcher.checkpoint import job_directory
from batchcraft.batcher.datasets import DatasetRegistry
from batchcraft.batcher.served_dataset import CuratedDataset
from batchcraft.errors import OutputError
from batchcraft.service import BatchClient, ServerConfig, create_server

pytestmark = pytest.mark.grpc


@contextlib.contextmanager
def unwritable(directory: Path) -> Iterator[Path]:
    """``directory``, made unwritable for this process: read-only bits, or (for root, whom
    those do not stop) the immutable attribute, as in the issue's report."""
    directory.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        directory.chmod(0o555)
        undo = ["chmod", "755", str(directory)]
    else:
        made = subprocess.run(["chattr", "+i", str(directory)], capture_output=True)
        if made.returncode != 0:
            pytest.skip(f"cannot make {directory} immutable here: {made.stderr!r}")
        undo = ["chattr", "-i", str(directory)]
    try:
        yield directory
    finally:
        subprocess.run(undo, check=True)


def serve_command(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m batchcraft.service.cli ARGS``, expected to stop at once."""
    command = [sys.executable, "-m", "batchcraft.service.cli", "--port", "0", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("what", ["checkpoint", "provenance"])
def test_an_unwritable_directory_stops_the_server_at_start(
    curated_dir: Path, tmp_path: Path, what: str
) -> None:
    """The server reported SERVING, then failed every session INTERNAL and exited 1."""
    with unwritable(tmp_path / "locked") as locked:
        if what == "checkpoint":
            flags = ["--checkpoint-dir", str(locked)]
        else:
            flags = ["--checkpoint-dir", str(tmp_path / "state"), "--provenance-dir", str(locked)]
        done = serve_command(str(curated_dir), "--name", "news", *flags)
    assert done.returncode == 2
    assert "listening" not in done.stdout
    lines = [line for line in done.stderr.splitlines() if line.startswith("batchcraft serve")]
    assert len(lines) == 1
    assert lines[0].startswith(
        f"batchcraft serve: error: {what} directory {locked} is not writable"
    )


def test_create_server_refuses_an_unwritable_checkpoint_directory(
    curated_dir: Path, tmp_path: Path
) -> None:
    registry = DatasetRegistry([CuratedDataset.open(curated_dir, "news")])
    with unwritable(tmp_path / "locked") as locked:
        for directory in (locked, locked / "jobs"):
            with pytest.raises(OutputError) as refused:
                create_server(registry, ServerConfig(fsync=False, checkpoint_dir=directory))
            assert f"checkpoint directory {directory} is not writable" in str(refused.value)


def test_a_refused_start_leaves_no_selection_worker_running(
    curated_dir: Path, tmp_path: Path
) -> None:
    """The workers started before the checkpoint store was found unusable were left to the
    interpreter's exit, which wrote a traceback under the one-line error (seen in CI)."""
    registry = DatasetRegistry([CuratedDataset.open(curated_dir, "news")])
    config = ServerConfig(fsync=False, checkpoint_dir=tmp_path / "locked", selection_workers=1)
    with unwritable(tmp_path / "locked"), pytest.raises(OutputError):
        create_server(registry, config)
    assert multiprocessing.active_children() == []


def leftover(directory: Path, name: str, age: float) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(b"half a checkpoint")
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def test_leftovers_of_a_killed_server_are_removed(curated_dir: Path, tmp_path: Path) -> None:
    """A killed server's .state.json.*.tmp files stayed forever."""
    state = tmp_path / "state"
    old_job = job_directory(state, "old")
    stale = [
        leftover(old_job, ".state.json.k2j3h4.tmp", age=3600),
        leftover(old_job, ".feedback.npz.a8d7f6.tmp", age=3600),
        leftover(state, ".write-probe.x1y2z3.tmp", age=3600),
    ]
    recent = leftover(job_directory(state, "taken"), ".state.json.r3c3nt.tmp", age=1)
    kept = [leftover(old_job, "notes.tmp", age=3600), leftover(old_job, "state.json", age=3600)]
    registry = DatasetRegistry([CuratedDataset.open(curated_dir, "news")])
    server = create_server(registry, ServerConfig(fsync=False, checkpoint_dir=state)).start()
    try:
        assert not any(path.exists() for path in stale)
        assert all(path.exists() for path in kept)  # not a checkpoint temporary's name
        assert recent.exists()  # young: it could be another server's write in progress
        address = f"127.0.0.1:{server.port}"
        with BatchClient(address, "news", batch_size=50, columns=["id"], job="taken") as client:
            assert sum(len(batch["id"]) for batch in client) == 101
        assert not recent.exists()  # this server took the job on: no one else writes it
    finally:
        server.stop(grace=0)
