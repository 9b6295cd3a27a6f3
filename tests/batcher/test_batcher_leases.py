"""Job leases: one replica owns a job at a time; a lease that expires (or is released) is
taken over, and the job's cursors and feedback move with it through the checkpoint."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from batchcraft.batcher.checkpoint import job_directory
from batchcraft.batcher.checkpoint_store import CheckpointStore
from batchcraft.batcher.config import JobConfig, Position
from batchcraft.batcher.datasets import DatasetRegistry
from batchcraft.batcher.errors import JobMovedError
from batchcraft.batcher.leased_registry import LeasedJobRegistry
from batchcraft.batcher.leases import JobLeases, latest_lease
from batchcraft.batcher.served_dataset import CuratedDataset
from batchcraft.batcher.stream import RankStream
from batchcraft.errors import ConfigError

LEASE_SECONDS = 30.0


class Clocks:
    """One wall clock shared by the replicas and one monotonic clock each, all moved by hand."""

    def __init__(self) -> None:
        self.wall = 1_000_000.0
        self.own: dict[str, float] = {}

    def wall_clock(self) -> float:
        return self.wall

    def monotonic(self, holder: str) -> float:
        return self.own.get(holder, 0.0) + self.wall

    def pass_seconds(self, seconds: float) -> None:
        self.wall += seconds


def leases(root: Path, name: str, clocks: Clocks) -> JobLeases:
    return JobLeases(
        CheckpointStore.at(root, fsync=False).job,
        f"{name}:1:1",
        f"{name}:50051",
        LEASE_SECONDS,
        clock=clocks.wall_clock,
        monotonic=lambda: clocks.monotonic(name),
    )


def test_a_live_lease_sends_other_replicas_to_its_holder(tmp_path: Path) -> None:
    clocks = Clocks()
    first, second = leases(tmp_path, "a", clocks), leases(tmp_path, "b", clocks)
    first.acquire("J")
    with pytest.raises(JobMovedError) as moved:
        second.acquire("J")
    assert moved.value.address == "a:50051" and moved.value.expires_in == LEASE_SECONDS
    # renewed every interval, the lease never expires
    for _ in range(10):
        clocks.pass_seconds(first.interval)
        assert first.renew() == []
        with pytest.raises(JobMovedError):
            second.acquire("J")
    assert first.holds("J") and not second.holds("J")


def test_an_expired_lease_is_taken_over_and_its_old_holder_learns_it_lost_the_job(
    tmp_path: Path,
) -> None:
    clocks = Clocks()
    first, second = leases(tmp_path, "a", clocks), leases(tmp_path, "b", clocks)
    first.acquire("J")
    clocks.pass_seconds(first.interval * 2)  # two renewals missed: still a live lease,
    with pytest.raises(JobMovedError) as moved:
        second.acquire("J")
    # but its holder is likely dead: clients are told when it expires, not sent there
    assert moved.value.address == "" and moved.value.expires_in == pytest.approx(first.interval)
    assert not first.holds("J")  # its own view ended one interval before the others'
    clocks.pass_seconds(first.interval)
    second.acquire("J")
    assert latest_lease(CheckpointStore.at(tmp_path).job("J")).holder == "b:1:1"  # type: ignore[union-attr]
    assert first.renew() == ["J"] and not first.holds("J") and second.holds("J")
    assert [p.name for p in job_directory(tmp_path, "J").glob("lease.*")] == ["lease.2"]


def test_a_released_lease_is_taken_at_once(tmp_path: Path) -> None:
    clocks = Clocks()
    first, second = leases(tmp_path, "a", clocks), leases(tmp_path, "b", clocks)
    first.acquire("J")
    first.release("J")
    second.acquire("J")
    with pytest.raises(JobMovedError):
        first.acquire("J")


def test_of_replicas_taking_a_job_at_once_exactly_one_holds_it(tmp_path: Path) -> None:
    clocks = Clocks()
    replicas = [leases(tmp_path, f"r{i}", clocks) for i in range(8)]
    start = threading.Barrier(len(replicas))
    refused: list[JobMovedError] = []

    def take(replica: JobLeases) -> None:
        start.wait()
        try:
            replica.acquire("J")
        except JobMovedError as error:
            refused.append(error)

    threads = [threading.Thread(target=take, args=(replica,)) for replica in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    holders = [replica for replica in replicas if replica.holds("J")]
    assert len(holders) == 1 and len(refused) == len(replicas) - 1
    assert {error.address for error in refused} <= {holders[0].address, ""}


def registry(root: Path, dataset: CuratedDataset, name: str, clocks: Clocks) -> LeasedJobRegistry:
    return LeasedJobRegistry(
        DatasetRegistry([dataset]), root, fsync=False, leases=leases(root, name, clocks)
    )


def test_feedback_and_cursors_move_with_the_lease(tmp_path: Path, dataset: CuratedDataset) -> None:
    clocks = Clocks()
    first, second = (
        registry(tmp_path, dataset, "a", clocks),
        registry(tmp_path, dataset, "b", clocks),
    )
    config = JobConfig("news", "jest_independent", batch_size=4, seed=3)
    job = first.open_session("J", config, 0)
    stream = RankStream(job, 0, persist=first.persist_selections)
    for _ in range(3):
        batch = stream.next()
        ids = dataset.ids[batch.positions].tolist()
        stream.report(ids, {"learner_losses": np.arange(len(ids), dtype=np.float32)})
        job.advance(0, stream.position)
    first.save(job)  # the periodic save of the holder, before it dies
    with pytest.raises(JobMovedError):
        second.open_session("J", config, 0)  # the holder lives: redirected
    clocks.pass_seconds(LEASE_SECONDS)  # the holder died: no renewal since
    taken = second.open_session("J", config, 0)
    assert taken.cursors == {0: Position(0, 3)}
    losses = taken.feedback.rows["learner_losses"], job.feedback.rows["learner_losses"]
    assert np.array_equal(*losses, equal_nan=True) and not np.isnan(losses[0]).all()
    # the old holder, had it only stalled, must neither save nor send a selection now
    with pytest.raises(JobMovedError) as moved:
        stream.next()  # its write-ahead save refuses
    assert moved.value.address == "b:50051"
    saved = (job_directory(tmp_path, "J") / "state.json").stat().st_mtime_ns
    first.save(job)
    assert (job_directory(tmp_path, "J") / "state.json").stat().st_mtime_ns == saved
    first.drop_lost(first.leases.renew())
    assert "J" not in first


def test_a_refused_job_leaves_no_lease_behind(tmp_path: Path, dataset: CuratedDataset) -> None:
    jobs = registry(tmp_path, dataset, "a", Clocks())
    with pytest.raises(ConfigError):
        jobs.open_session("J", JobConfig("news", "jest", {"temperature": -1.0}), 0)
    assert not job_directory(tmp_path, "J").exists() and jobs.leases.held() == []
