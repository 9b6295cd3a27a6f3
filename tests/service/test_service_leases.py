"""Replicas with leases: one replica serves a job at a time, the others redirect its
sessions there, and when the owner is SIGKILLed the survivor takes the job over once the
lease expires, with the feedback and selections the owner saved.

The ranks start on different replicas (``ipv4:a,b`` and ``ipv4:b,a``): without leases
each replica would serve the job from its own state. The failover tests run with the
checkpoints in a shared directory and in a bucket of an S3-compatible server (moto's).
"""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ranks import received, run_ranks

from batchcraft.batcher.checkpoint_store import CheckpointStore
from batchcraft.batcher.datasets import DatasetRegistry
from batchcraft.batcher.leased_registry import LeasedJobRegistry
from batchcraft.batcher.leases import latest_lease
from batchcraft.batcher.served_dataset import CuratedDataset
from batchcraft.errors import ConfigError
from batchcraft.service import BatchClient, ServerConfig, create_server

pytestmark = pytest.mark.grpc
KILL_AFTER = 3  # batches each rank receives before the owner is killed
LEASE_SECONDS = 1.5


@pytest.fixture(params=["directory", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> CheckpointStore:
    """The replicas' shared checkpoint store: a directory, or a prefix in a moto bucket."""
    if request.param == "directory":
        return CheckpointStore.at(tmp_path / "state")
    s3_server = request.getfixturevalue("s3_server")
    return CheckpointStore.at(f"s3://{s3_server.new_bucket()}/replicas/state")


def replicas(server_process, curated_dir: Path, store: CheckpointStore) -> list:  # type: ignore[no-untyped-def]
    args = (str(curated_dir), "--name", "news", "--checkpoint-dir", store.url,
            "--checkpoint-interval", "0.1", "--selection-workers", "0",
            "--lease-seconds", str(LEASE_SECONDS))  # fmt: skip
    return [server_process(*args), server_process(*args)]


def train_through_a_kill(
    servers: list,  # type: ignore[type-arg]
    state: CheckpointStore,
    dataset: CuratedDataset,
    selector: str,
    **settings: Any,
) -> list[list[Any]]:
    """Rank 0 on ``ipv4:first,second``, rank 1 on ``ipv4:second,first``; once both received
    `KILL_AFTER` batches (and their feedback was saved), the replica holding the job's
    lease is SIGKILLed. Returns each rank's batches as (epoch, step, ids, info, after)."""
    job = f"leases-{selector}"
    addresses = [server.address for server in servers]
    trainers = [
        BatchClient(
            f"ipv4:{','.join(order)}",
            "news",
            selector,
            2,
            rank=rank,
            world_size=2,
            columns=["id"],
            job=job,
            seed=3,
            reconnect_attempts=20,
            **settings,
        )
        for rank, order in enumerate([addresses, addresses[::-1]])
    ]
    served: list[list[Any]] = [[], []]
    both_there = threading.Barrier(2, timeout=60)
    killed = threading.Event()

    def train(rank: int) -> None:
        for batch in trainers[rank]:
            served[rank].append(received(trainers[rank], batch, killed.is_set()))
            ids = served[rank][-1][2]
            if selector != "uniform":
                trainers[rank].report(ids, losses=loss_of(ids))
            if len(served[rank]) == KILL_AFTER:
                both_there.wait()
                if rank == 0:
                    if selector != "uniform":  # the owner has saved the feedback so far
                        pre_kill = [i for r in served for (_, _, ids, _, _) in r for i in ids]
                        wait_for_saved(state, job, dataset, pre_kill)
                    owner = latest_lease(state.job(job))
                    assert owner is not None
                    (dead,) = [server for server in servers if server.address == owner.address]
                    dead.kill()
                    killed.set()
                killed.wait(30)

    run_ranks(train, trainers)
    assert killed.is_set()
    assert sum(server.process.poll() is None for server in servers) == 1  # one survivor
    return served


def saved_losses(
    state: CheckpointStore, job: str, dataset: CuratedDataset, ids: list[str]
) -> np.ndarray:
    """The losses of ``ids`` in ``job``'s checkpoint (NaN: not reported, or not saved)."""
    files = state.job(job)
    named = json.loads(files.read("state.json") or b"{}").get("feedback")
    data = files.read(named) if named else None
    if data is None:
        return np.full(len(ids), np.nan, np.float32)
    with np.load(io.BytesIO(data)) as saved:
        return saved["rows/learner_losses"][dataset.positions_of(ids)]  # type: ignore[no-any-return]


def wait_for_saved(
    state: CheckpointStore, job: str, dataset: CuratedDataset, ids: list[str]
) -> None:
    """Until the checkpoint holds the losses reported on ``ids`` (each within a checkpoint
    interval of its arrival: what a SIGKILL loses is at most that interval's feedback)."""
    deadline = time.monotonic() + 30
    while np.isnan(saved_losses(state, job, dataset, ids)).any() and time.monotonic() < deadline:
        time.sleep(0.05)


def loss_of(ids: list[str]) -> np.ndarray:
    """A loss per row that names its row (the survivor must hold exactly these)."""
    return np.asarray([float(sum(map(ord, i))) for i in ids], np.float32)


def test_ranks_on_different_replicas_get_every_kept_id_once_across_a_failover(
    curated_dir: Path, store: CheckpointStore, kept_ids: list[str], server_process
) -> None:  # type: ignore[no-untyped-def]
    servers = replicas(server_process, curated_dir, store)
    served = train_through_a_kill(servers, store, CuratedDataset.open(curated_dir), "uniform")
    everything = [i for rank in served for (_, _, ids, _, _) in rank for i in ids]
    assert len(everything) == len(set(everything))  # nothing twice
    assert sorted(everything) == sorted(kept_ids)  # nothing lost
    assert all(any(after for *_, after in rank) for rank in served)  # both went on


def test_the_survivor_selects_with_the_feedback_sent_before_the_failover(
    curated_dir: Path, store: CheckpointStore, server_process
) -> None:  # type: ignore[no-untyped-def]
    state = store
    servers = replicas(server_process, curated_dir, state)
    # pools of 5 candidates for 4 rows: 20 steps in the epoch, and at most 2 selected ahead
    settings = dict(selector_params={"filter_ratio": 0.2}, max_in_flight=2, num_epochs=1)
    dataset = CuratedDataset.open(curated_dir)
    served = train_through_a_kill(servers, state, dataset, "jest_independent", **settings)
    steps = [[(epoch, step) for epoch, step, *_ in rank] for rank in served]
    assert steps[0] == steps[1] and len(set(steps[0])) == len(steps[0])  # in step, none twice
    for (*_, first, _, _), (*_, second, _, _) in zip(*served, strict=True):
        assert not set(first) & set(second)  # each step's selection split between the ranks
    for rank in served:
        # the first batches are uniform (no feedback yet); every selection the survivor made
        # is jest's: it loaded the feedback the dead owner had saved
        fallback = ["fallback_from" in info for (*_, info, _) in rank]
        assert fallback == sorted(fallback, reverse=True)
        assert any(after and not was for (*_, after), was in zip(rank, fallback, strict=True))
    # the survivor's checkpoint holds every loss reported, as reported (one epoch: no row was
    # served, nor reported, twice), those reported on the dead owner's session too: the
    # clients resent what the owner had not saved (`FeedbackLog`)
    everything = [i for rank in served for (_, _, ids, _, _) in rank for i in ids]
    wait_for_saved(state, "leases-jest_independent", dataset, everything)
    losses = saved_losses(state, "leases-jest_independent", dataset, everything)
    assert np.array_equal(losses, loss_of(everything))


def test_two_live_replicas_never_serve_one_job_together(
    curated_dir: Path, tmp_path: Path, kept_ids: list[str]
) -> None:
    """Rank 1 names only the second replica; that replica redirects it to the owner."""
    config = ServerConfig(checkpoint_dir=tmp_path, lease_seconds=30.0, fsync=False)
    servers = [
        create_server(DatasetRegistry([CuratedDataset.open(curated_dir, "news")]), config).start()
        for _ in range(2)
    ]
    try:
        settings = dict(columns=["id"], job="one-owner", seed=1)
        first = BatchClient(f"127.0.0.1:{servers[0].port}", "news", "uniform", 4, rank=0,
                            world_size=2, **settings)  # type: ignore[arg-type]  # fmt: skip
        received = [list(next(iter(first))["id"])]
        second = BatchClient(f"127.0.0.1:{servers[1].port}", "news", "uniform", 4, rank=1,
                             world_size=2, **settings)  # type: ignore[arg-type]  # fmt: skip
        for batch in second:
            received.append(list(batch["id"]))
        for batch in first:
            received.append(list(batch["id"]))
        everything = [i for ids in received for i in ids]
        assert sorted(everything) == sorted(kept_ids)  # one job, one state: every id once
        jobs = [server.servicer.jobs for server in servers]
        assert "one-owner" in jobs[0] and "one-owner" not in jobs[1]
        assert servers[1].servicer.metrics.errors._value.get() == 0  # a redirect is no error
        first.close()
        second.close()
    finally:
        for server in servers:
            server.stop(grace=0)
    # at shutdown the owner released its lease: another replica may take the job at once
    lease = latest_lease(CheckpointStore.at(tmp_path).job("one-owner"))
    assert lease is not None and lease.expires == 0


def test_a_replica_that_lost_the_lease_mid_session_sends_its_client_to_the_new_owner(
    curated_dir: Path, tmp_path: Path, kept_ids: list[str]
) -> None:
    """The owner stalls past its lease (simulated: its own view of the lease ends, and the
    second replica takes the job over); its open session ends with a redirect, and the
    client goes on at the new owner with every id once."""
    config = ServerConfig(
        checkpoint_dir=tmp_path, lease_seconds=1.5, checkpoint_interval=0.1, fsync=False
    )
    servers = [
        create_server(DatasetRegistry([CuratedDataset.open(curated_dir, "news")]), config).start()
        for _ in range(2)
    ]
    first, second = (server.servicer.jobs for server in servers)
    assert isinstance(first, LeasedJobRegistry) and isinstance(second, LeasedJobRegistry)
    client = BatchClient(f"127.0.0.1:{servers[0].port}", "news", "uniform", 4, job="stalled",
                         columns=["id"], max_in_flight=1, reconnect_attempts=5)  # fmt: skip
    real_clock = second.leases.clock

    def take_over() -> None:
        first.leases._held["stalled"].valid_until = 0.0  # the stall outlived its lease
        second.leases.clock = lambda: real_clock() + 60.0  # to whom the lease looks expired
        second.leases.acquire("stalled")
        second.leases.clock = real_clock

    received: list[str] = []
    try:
        for batch in client:
            received += list(batch["id"])
            if len(received) == 12:
                take_over()
        assert sorted(received) == sorted(kept_ids)  # nothing lost, nothing twice
        assert "stalled" in second
        deadline = time.monotonic() + 10
        while "stalled" in first and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "stalled" not in first  # dropped, unsaved, at its next renewal
        assert client.opened is not None and client._route.current.target.endswith(
            str(servers[1].port)
        )
    finally:
        client.close()
        for server in servers:
            server.stop(grace=0)


def test_leases_need_a_checkpoint_directory() -> None:
    with pytest.raises(ConfigError, match="checkpoint directory"):
        ServerConfig(lease_seconds=6.0)
