"""Bounded job state: idle jobs are saved and dropped, then reloaded as if never dropped;
finished jobs expire after their retention, from memory and from the checkpoint."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from batchcraft.batcher.checkpoint import job_directory
from batchcraft.batcher.config import JobConfig, Position
from batchcraft.batcher.datasets import DatasetRegistry
from batchcraft.batcher.job_lifetimes import MARKER, JobLifetimes
from batchcraft.batcher.registry import JobRegistry
from batchcraft.batcher.served_dataset import CuratedDataset
from batchcraft.batcher.stream import RankStream
from batchcraft.errors import ConfigError

Batch = tuple[Position, tuple[int, ...], str]


class Clock:
    """Wall-clock seconds that move only when a test says."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def registry(
    root: Path | None, dataset: CuratedDataset, clock: Clock, **lifetimes: float
) -> JobRegistry:
    return JobRegistry(
        DatasetRegistry([dataset]),
        root,
        fsync=False,
        lifetimes=JobLifetimes(**lifetimes),
        clock=clock,
    )


def losses(positions: np.ndarray) -> np.ndarray:
    """A learner's loss per row, a fixed function of the row (so both runs report alike)."""
    return ((positions * 7919) % 101).astype(np.float32)


def serve_two_epochs(
    dataset: CuratedDataset, root: Path, selector: str, evict_after: int | None
) -> list[Batch]:
    """Rank 0's batches of two epochs, reporting losses after each; after ``evict_after``
    batches the session closes, the job idles past its limit and a new session reloads it."""
    clock = Clock()
    jobs = registry(root, dataset, clock, idle_seconds=60)
    config = JobConfig("news", selector, batch_size=2, seed=3)
    job = jobs.open_session("J", config, 0)
    stream = RankStream(job, 0, num_epochs=2, persist=jobs.persist_selections)
    served: list[Batch] = []
    while not stream.exhausted:
        batch = stream.next()
        served.append((batch.position, tuple(batch.positions), batch.metrics.get("selector", "")))
        ids = dataset.ids[batch.positions].tolist()
        stream.report(ids, {"learner_losses": losses(batch.positions)})
        job.advance(0, stream.position)
        if len(served) == evict_after:
            jobs.close_session(job, 0, finished=False)
            clock.now += 59
            jobs.retire()
            assert "J" in jobs  # not idle long enough yet
            clock.now += 2
            jobs.retire()
            assert "J" not in jobs
            job = jobs.open_session("J", config, 0)
            assert job.feedback.reported("learner_losses", batch.positions).all()
            stream = RankStream(job, 0, num_epochs=2, persist=jobs.persist_selections)
            stream.reset(job.cursors[0])
    return served


@pytest.mark.parametrize("selector", ["uniform", "jest"])
def test_an_evicted_job_serves_the_batches_of_one_never_evicted(
    dataset: CuratedDataset, tmp_path: Path, selector: str
) -> None:
    kept = serve_two_epochs(dataset, tmp_path / "kept", selector, None)
    evicted = serve_two_epochs(dataset, tmp_path / "evicted", selector, 3)
    assert evicted == kept
    if selector == "jest":  # the batches after the reload were chosen with the feedback
        assert {name for _, _, name in evicted[3:]} == {"jest"}


def test_a_job_in_use_or_without_checkpoints_stays(dataset: CuratedDataset, tmp_path: Path) -> None:
    clock = Clock()
    jobs = registry(tmp_path, dataset, clock, idle_seconds=60)
    held = jobs.open_session("held", CONFIG, 0)
    jobs.get_or_create("idle", CONFIG)
    clock.now += 3600
    jobs.retire()
    assert "held" in jobs and "idle" not in jobs
    jobs.close_session(held, 0, finished=False)
    clock.now += 61
    jobs.retire()
    assert "held" not in jobs
    in_memory = registry(None, dataset, clock, idle_seconds=60)
    in_memory.get_or_create("R", CONFIG)
    clock.now += 3600
    in_memory.retire()
    assert "R" in in_memory  # it has nowhere to be saved


CONFIG = JobConfig("news", batch_size=30, world_size=2, seed=1)  # 83 rows: 2 steps


def finish(jobs: JobRegistry, job_id: str) -> None:
    """Serve both ranks of ``job_id`` their one epoch and close their sessions."""
    for rank in (0, 1):
        job = jobs.open_session(job_id, CONFIG, rank)
        stream = RankStream(job, rank, num_epochs=1, persist=jobs.persist_selections)
        while not stream.exhausted:
            stream.next()
        job.advance(rank, stream.position)
        jobs.close_session(job, rank, finished=True)
        marker = job_directory(jobs.checkpoint_dir, job_id) / MARKER  # type: ignore[arg-type]
        assert marker.exists() == (rank == 1)  # finished when every rank is


def test_a_finished_job_is_dropped_after_its_retention(
    dataset: CuratedDataset, tmp_path: Path
) -> None:
    clock = Clock()
    jobs = registry(tmp_path, dataset, clock, idle_seconds=0, finished_retention=100)
    finish(jobs, "F")
    directory = job_directory(tmp_path, "F")
    clock.now += 99
    jobs.retire()
    assert "F" in jobs and directory.exists()
    clock.now += 2
    jobs.retire()
    assert "F" not in jobs and not directory.exists()
    again = jobs.open_session("F", CONFIG, 0)
    assert again.cursors == {}  # a new job of the same id starts afresh


def test_a_finished_job_opened_again_runs_again(dataset: CuratedDataset, tmp_path: Path) -> None:
    clock = Clock()
    jobs = registry(tmp_path, dataset, clock, idle_seconds=0, finished_retention=100)
    finish(jobs, "F")
    job = jobs.open_session("F", CONFIG, 1)  # e.g. a second run over more epochs
    assert not (job_directory(tmp_path, "F") / MARKER).exists()
    jobs.close_session(job, 1, finished=False)
    clock.now += 1000
    jobs.retire()
    assert "F" in jobs


def test_a_restarted_server_expires_finished_checkpoints(
    dataset: CuratedDataset, tmp_path: Path
) -> None:
    clock = Clock()
    finish(registry(tmp_path, dataset, clock, finished_retention=100), "F")
    finish(registry(tmp_path, dataset, clock, finished_retention=100), "G")
    old = job_directory(tmp_path, "F") / MARKER
    os.utime(old, (clock.now - 200, clock.now - 200))  # F finished before the restart
    restarted = registry(tmp_path, dataset, clock, finished_retention=100)
    restarted.retire()
    assert not job_directory(tmp_path, "F").exists()
    assert job_directory(tmp_path, "G").exists()


def test_lifetimes_refuse_negative_values() -> None:
    with pytest.raises(ConfigError, match="idle_seconds=-1"):
        JobLifetimes(idle_seconds=-1)
