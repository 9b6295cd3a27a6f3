"""Checkpoints: saving survives errors."""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from loss_selector import TopLossSelector

from batchcraft.batcher.checkpoint import job_directory
from batchcraft.batcher.config import JobConfig, Position
from batchcraft.batcher.dataset import CuratedDataset
from batchcraft.batcher.errors import CheckpointSaveError
from batchcraft.batcher.registry import DatasetRegistry, JobRegistry
from batchcraft.selectors import SELECTORS

CONFIG = JobConfig("news", batch_size=10, seed=1)


def registry(root: Path, *datasets: CuratedDataset) -> JobRegistry:
    """A job registry on ``root``, as a (re)started server builds it."""
    return JobRegistry(DatasetRegistry(datasets), root, fsync=False)


def checkpoint(root: Path, dataset: CuratedDataset, job_id: str = "R") -> Path:
    """Save job ``job_id`` of ``CONFIG`` at cursor (0, 3) with feedback; its directory."""
    jobs = registry(root, dataset)
    job = jobs.get_or_create(job_id, CONFIG)
    job.advance(0, Position(0, 3))
    job.feedback.update(np.arange(5), {"learner_losses": np.ones(5, np.float32)})
    jobs.save_all()
    return job_directory(root, job_id)


def saved_cursors(directory: Path) -> dict[str, list[int]]:
    return json.loads((directory / "state.json").read_text())["cursors"]


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def break_directory(directory: Path) -> None:
    """Make ``directory`` unwritable for checkpoints: a file where the directory should be."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.parent.mkdir(parents=True, exist_ok=True)
    directory.write_text("not a directory")


# -- saving: one failing job stops neither the saver nor the other jobs --


def test_periodic_saves_go_on_past_a_failing_job(
    dataset: CuratedDataset, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    jobs = registry(tmp_path, dataset)
    first, second = (jobs.get_or_create(job_id, CONFIG) for job_id in "AB")
    jobs.save_all()
    broken = job_directory(tmp_path, "A")
    break_directory(broken)
    stop = threading.Event()
    saver = threading.Thread(target=jobs.run_periodic_saves, args=(0.01, stop), daemon=True)
    with caplog.at_level(logging.INFO, logger="batchcraft.batcher"):
        saver.start()
        try:
            second.advance(0, Position(0, 4))
            other = job_directory(tmp_path, "B")
            assert wait_until(lambda: saved_cursors(other) == {"0": [0, 4]})
            broken.unlink()  # the directory is writable again
            first.advance(0, Position(0, 2))
            assert wait_until(lambda: (broken / "state.json").exists())
            assert saved_cursors(broken) == {"0": [0, 2]}
            assert saver.is_alive()
        finally:
            stop.set()
            saver.join()
    events = [json.loads(record.getMessage()) for record in caplog.records]
    failed = [e for e in events if e["event"] == "checkpoint_failed"]
    assert failed and {(e["job"], e["path"]) for e in failed} == {("A", str(broken))}
    assert "FileExistsError" in failed[0]["error"]
    assert {"event": "checkpoint_recovered", "job": "A", "path": str(broken)} in events


def test_save_all_saves_every_other_job_and_names_the_failed_one(
    dataset: CuratedDataset, tmp_path: Path
) -> None:
    jobs = registry(tmp_path, dataset)
    jobs.get_or_create("A", CONFIG)
    second = jobs.get_or_create("B", CONFIG)
    broken = job_directory(tmp_path, "A")
    break_directory(broken)
    second.advance(0, Position(0, 1))
    with pytest.raises(CheckpointSaveError, match=f"job 'A' in {broken}: FileExistsError"):
        jobs.save_all()
    assert saved_cursors(job_directory(tmp_path, "B")) == {"0": [0, 1]}


def test_a_failed_write_ahead_save_is_retried(
    dataset: CuratedDataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(SELECTORS, TopLossSelector.name, TopLossSelector)
    jobs = registry(tmp_path, dataset)
    job = jobs.get_or_create("F", JobConfig("news", selector=TopLossSelector.name, batch_size=4))
    directory = job_directory(tmp_path, "F")
    break_directory(directory)
    selected = job.rank_batch(Position(0, 0), 0)
    with pytest.raises(FileExistsError):  # the selection must not be sent unsaved
        jobs.persist_selections(job)
    directory.unlink()
    jobs.persist_selections(job)  # still due: the failed save did not count
    state = json.loads((directory / "state.json").read_text())
    assert [s["positions"] for s in state["selections"]] == [selected.positions.tolist()]
