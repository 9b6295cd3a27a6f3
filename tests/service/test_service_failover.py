"""Two replicas sharing a checkpoint directory: a trainer fails over when one dies.

The trainer names both replicas in one gRPC target (``ipv4:a,b``): gRPC's
``pick_first`` policy connects to the first that answers, and when it dies the
client's reconnect resumes in place on the other, which loads the job from the
shared checkpoints (its selections saved ahead of sending, its feedback within
a checkpoint interval).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ranks import received, run_ranks

from batchcraft.service import BatchClient

pytestmark = pytest.mark.grpc
KILL_AFTER = 3  # batches rank 0 receives before its replica is killed


def replicas(server_process, curated_dir: Path, state: Path) -> list:  # type: ignore[no-untyped-def]
    args = (str(curated_dir), "--name", "news", "--checkpoint-dir", str(state),
            "--checkpoint-interval", "0.1", "--selection-workers", "0")  # fmt: skip
    return [server_process(*args), server_process(*args)]


def train_through_a_kill(servers: list, selector: str, epochs: int) -> list[list[Any]]:  # type: ignore[type-arg]
    """Two ranks on ``ipv4:first,second``; the first replica is SIGKILLed mid-run. Returns
    each rank's batches as (epoch, step, ids, selector info, after the kill)."""
    target = "ipv4:" + ",".join(server.address for server in servers)
    settings = dict(columns=["id"], job=f"failover-{selector}", num_epochs=epochs, seed=3,
                    reconnect_attempts=10)  # fmt: skip
    trainers = [
        BatchClient(target, "news", selector, 4, rank=rank, world_size=2, **settings)  # type: ignore[arg-type]
        for rank in range(2)
    ]
    served: list[list[Any]] = [[], []]
    killed = threading.Event()

    def train(rank: int) -> None:
        for batch in trainers[rank]:
            served[rank].append(received(trainers[rank], batch, killed.is_set()))
            ids = served[rank][-1][2]
            if selector != "uniform":
                trainers[rank].report(ids, losses=np.ones(len(ids), np.float32))
            if len(served[rank]) == KILL_AFTER:
                if rank == 0:
                    time.sleep(0.5)  # checkpoint intervals: the feedback so far is saved
                    servers[0].kill()
                    killed.set()
                killed.wait(30)

    run_ranks(train, trainers)
    assert killed.is_set() and servers[0].process.poll() is not None
    return served


def test_uniform_ranks_get_every_kept_id_once_across_a_failover(
    curated_dir: Path, tmp_path: Path, kept_ids: list[str], server_process
) -> None:  # type: ignore[no-untyped-def]
    servers = replicas(server_process, curated_dir, tmp_path / "state")
    served = train_through_a_kill(servers, "uniform", epochs=1)
    everything = [i for rank in served for (_, _, ids, _, _) in rank for i in ids]
    assert len(everything) == len(set(everything))  # nothing twice
    assert sorted(everything) == sorted(kept_ids)  # nothing lost
    assert any(after for *_, after in served[0])  # rank 0 was served by the survivor


def test_a_feedback_selector_keeps_its_feedback_across_a_failover(
    curated_dir: Path, tmp_path: Path, server_process
) -> None:  # type: ignore[no-untyped-def]
    servers = replicas(server_process, curated_dir, tmp_path / "state")
    served = train_through_a_kill(servers, "jest_independent", epochs=5)
    for rank in served:
        positions = [(epoch, step) for epoch, step, *_ in rank]
        assert len(positions) == len(set(positions))  # no step served twice to a rank
    for rank in served:
        # The survivor serves the selections the first replica saved ahead of sending
        # (made before any feedback: uniform fallbacks), then makes its own from the
        # saved feedback: the fallbacks are a prefix, and jest selections follow the kill.
        fallback = ["fallback_from" in info for (*_, info, _) in rank]
        assert fallback == sorted(fallback, reverse=True)
        assert any(later and not was for (*_, later), was in zip(rank, fallback, strict=True))
    assert {len(rank) for rank in served} == {len(served[0])}  # the ranks stayed in step
