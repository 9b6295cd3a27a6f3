"""Bounded job state through the service: an idle job leaves memory (the gauge says so) and
its next session continues it from the checkpoint."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest

from batchcraft.batcher.datasets import DatasetRegistry
from batchcraft.batcher.served_dataset import CuratedDataset
from batchcraft.service import BatchClient
from batchcraft.service.server import ServerConfig, create_server

pytestmark = pytest.mark.grpc


def test_an_idle_job_is_dropped_and_its_next_session_continues_it(
    curated_dir: Path, tmp_path: Path
) -> None:
    registry = DatasetRegistry([CuratedDataset.open(curated_dir, "news")])
    config = ServerConfig(
        checkpoint_dir=tmp_path, fsync=False, checkpoint_interval=0.05, job_idle_seconds=0.3
    )
    server = create_server(registry, config).start()
    address = f"127.0.0.1:{server.port}"
    params: dict = {"batch_size": 6, "seed": 11, "columns": ["id"], "num_epochs": 1}
    jobs, metrics = server.servicer.jobs, server.servicer.metrics
    try:
        with BatchClient(address, "news", job="whole", **params) as whole:
            uninterrupted = [list(b["id"]) for b in whole]
        first = BatchClient(address, "news", job="idle", **params)
        head = [list(b["id"]) for b in itertools.islice(first, 7)]
        state = first.state_dict()
        first.close()
        assert "idle" in jobs
        deadline = time.monotonic() + 10
        while len(jobs) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(jobs) == 0 and metrics.value("batchcraft_jobs_in_memory") == 0
        second = BatchClient(address, "news", job="idle", **params)
        second.load_state_dict(state)
        tail = [list(b["id"]) for b in second]
        second.close()
        assert head + tail == uninterrupted
    finally:
        server.stop(grace=0)
