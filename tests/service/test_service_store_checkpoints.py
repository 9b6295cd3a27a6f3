"""Checkpoints and leases in an object store (moto's S3-compatible server on loopback): a
server restarted on a bucket resumes its jobs exactly, a feedback table is written before
the state that names it, idle jobs and finished ones leave and expire as they do locally,
concurrent lease takers have one winner, and a store that cannot be reached or cannot
create a lease exclusively is a one-line error."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from grpc import StatusCode
from s3_server import S3Server

from batchcraft.batcher.checkpoint_store import CheckpointStore
from batchcraft.batcher.config import JobConfig, Position
from batchcraft.batcher.datasets import DatasetRegistry
from batchcraft.batcher.errors import JobMovedError
from batchcraft.batcher.job_lifetimes import MARKER, JobLifetimes
from batchcraft.batcher.leases import JobLeases, latest_lease
from batchcraft.batcher.registry import JobRegistry
from batchcraft.batcher.served_dataset import CuratedDataset
from batchcraft.errors import ConfigError, StorageError
from batchcraft.service import BatchClient, ServerConfig, create_server
from batchcraft.service.server.status import status_for

pytestmark = pytest.mark.grpc
CONFIG = JobConfig("news", batch_size=10, seed=1)


@pytest.fixture
def dataset(curated_dir: Path) -> CuratedDataset:
    return CuratedDataset.open(curated_dir, "news")


def _client(address: str, job: str) -> BatchClient:
    return BatchClient(address, "news", "uniform", 6, seed=11, columns=["id"], num_epochs=1, job=job)  # fmt: skip


def test_a_server_restarted_on_a_bucket_resumes_a_job_exactly(
    dataset: CuratedDataset, s3_server: S3Server
) -> None:
    checkpoints = f"s3://{s3_server.new_bucket()}/serve/state"
    runs: dict[str, list[list[str]]] = {"whole": [], "resumed": []}
    for job, restart_after in (("whole", None), ("resumed", 7)):
        config = ServerConfig(checkpoint_dir=checkpoints, fsync=False)
        server = create_server(DatasetRegistry([dataset]), config).start()
        with _client(f"127.0.0.1:{server.port}", job) as trainer:
            for batch in trainer:
                runs[job].append(list(batch["id"]))
                if len(runs[job]) == restart_after:
                    break
        server.stop(grace=0)  # saves every job in the bucket
        if restart_after is not None:
            assert CheckpointStore.at(checkpoints).job(job).read("state.json") is not None
            server = create_server(DatasetRegistry([dataset]), config).start()
            with _client(f"127.0.0.1:{server.port}", job) as trainer:
                runs[job] += [list(b["id"]) for b in trainer]
            server.stop(grace=0)
    assert runs["resumed"] == runs["whole"]


def _saved_feedback(store: CheckpointStore, job_id: str) -> tuple[list[str], np.ndarray]:
    """The feedback files in the job's prefix, and the losses of the one its state names."""
    files = store.job(job_id)
    state = json.loads(files.read("state.json") or b"{}")
    names = sorted(name for name in files.names() if name.startswith("feedback"))
    with np.load(io.BytesIO(files.read(state["feedback"]) or b"")) as saved:
        return names, saved["rows/learner_losses"]


def test_feedback_is_written_before_the_state_that_names_it_and_superseded_tables_go(
    dataset: CuratedDataset, s3_server: S3Server
) -> None:
    store = CheckpointStore.at(f"s3://{s3_server.new_bucket()}/state")
    jobs = JobRegistry(DatasetRegistry([dataset]), store)
    job = jobs.get_or_create("F", CONFIG)
    job.feedback.update(np.arange(5), {"learner_losses": np.ones(5, np.float32)})
    jobs.save_all()
    first, _ = _saved_feedback(store, "F")
    job.feedback.update(np.arange(3), {"learner_losses": np.full(3, 2.0, np.float32)})
    job.advance(0, Position(0, 2))
    jobs.save_all()
    names, losses = _saved_feedback(store, "F")
    assert len(names) == 1 and names != first  # a new table under a new name, the old gone
    assert losses[:5].tolist() == [2.0, 2.0, 2.0, 1.0, 1.0]
    job.advance(0, Position(0, 3))  # a state-only save still names the table
    jobs.save(job, with_feedback=False)
    restored = JobRegistry(DatasetRegistry([dataset]), store).get_or_create("F", CONFIG)
    assert restored.cursors == {0: Position(0, 3)}
    assert restored.feedback.to_arrays()["rows/learner_losses"][:5].tolist() == losses[:5].tolist()


def test_idle_jobs_leave_memory_and_finished_ones_expire_in_a_bucket(
    dataset: CuratedDataset, s3_server: S3Server
) -> None:
    now = [time.time()]  # the finished markers are dated by the store's clock
    store = CheckpointStore.at(f"s3://{s3_server.new_bucket()}/state")

    def registry() -> JobRegistry:
        lifetimes = JobLifetimes(idle_seconds=10, finished_retention=100)
        return JobRegistry(DatasetRegistry([dataset]), store, lifetimes=lifetimes, clock=lambda: now[0])  # fmt: skip

    jobs = registry()
    job = jobs.open_session("I", CONFIG, 0)
    job.advance(0, Position(0, 4))
    jobs.close_session(job, 0, finished=False)
    for server, job_id in ((jobs, "D"), (registry(), "E")):  # E: another server's job
        server.close_session(server.open_session(job_id, CONFIG, 0), 0, finished=True)
        assert store.job(job_id).modified(MARKER) is not None
    now[0] += 11
    jobs.retire()
    assert "I" not in jobs and "D" not in jobs  # saved and dropped: a session reloads them
    assert jobs.open_session("I", CONFIG, 0).cursors == {0: Position(0, 4)}
    now[0] += 100
    jobs.retire()  # past their retention, by their markers: D, and E that it never loaded
    assert not store.job("D").exists() and not store.job("E").exists()
    assert store.job("I").exists() and "I" in jobs


def test_of_eight_concurrent_lease_takers_on_a_bucket_exactly_one_holds_the_job(
    s3_server: S3Server,
) -> None:
    store = CheckpointStore.at(f"s3://{s3_server.new_bucket()}/state")
    start = threading.Barrier(8, timeout=30)
    outcomes: dict[int, str] = {}

    def take(replica: int) -> None:
        leases = JobLeases(store.job, f"r{replica}:1:1", f"r{replica}:50051", 30.0)
        start.wait()
        try:
            leases.acquire("contested")
            outcomes[replica] = "holds"
        except JobMovedError as moved:
            outcomes[replica] = f"moved to {moved.address}"

    threads = [threading.Thread(target=take, args=(replica,)) for replica in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    holders = [replica for replica, outcome in outcomes.items() if outcome == "holds"]
    assert len(outcomes) == 8 and len(holders) == 1
    lease = latest_lease(store.job("contested"))
    assert lease is not None and lease.holder == f"r{holders[0]}:1:1" and lease.generation == 1
    assert all(o == f"moved to r{holders[0]}:50051" for o in outcomes.values() if o != "holds")


def test_leases_on_a_store_without_a_conditional_create_are_refused(
    curated_dir: Path, tmp_path: Path
) -> None:
    registry = DatasetRegistry([CuratedDataset.open(curated_dir, "news")])
    config = ServerConfig(checkpoint_dir="memory://state", lease_seconds=3.0, fsync=False)
    with pytest.raises(ConfigError, match="memory:// offers no conditional create"):
        create_server(registry, config)
    result = _serve(curated_dir, "--checkpoint-dir", "memory://state", "--lease-seconds", "3")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "no conditional create" in result.stderr


def test_an_unreachable_checkpoint_store_is_a_one_line_error(curated_dir: Path) -> None:
    environment = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "k"}
    result = _serve(curated_dir, "--checkpoint-dir", "s3://bucket/state", env=environment)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "s3://bucket/state" in result.stderr
    # a store out of reach mid-run is an outage the client's reconnects may outlast
    assert status_for(StorageError("cannot reach s3://bucket/state"))[0] == StatusCode.UNAVAILABLE


def _serve(curated_dir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    import os

    command = [sys.executable, "-m", "batchcraft.service.cli", str(curated_dir), "--name", "news"]
    return subprocess.run(
        [*command, "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "AWS_SECRET_ACCESS_KEY": "s", **(env or {})},
    )
