"""Prometheus metrics: histograms with percentiles, bounded label sets, one registry per server."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchcraft.batcher.registry import DatasetRegistry
from batchcraft.batcher.served_dataset import CuratedDataset
from batchcraft.service import BatchClient, BatchServer, ServerConfig, create_server
from batchcraft.service.server.metrics import start_metrics_server

pytestmark = pytest.mark.grpc


@pytest.fixture
def servers(curated_dir: Path) -> Iterator[list[BatchServer]]:
    """Two servers in this one process, each with its own metrics."""
    started = [
        create_server(
            DatasetRegistry([CuratedDataset.open(curated_dir, "news")]), ServerConfig(fsync=False)
        ).start()
        for _ in range(2)
    ]
    yield started
    for server in started:
        server.stop(grace=0)


def scrape(server: BatchServer) -> str:
    http = start_metrics_server(server.servicer.metrics, "127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{http.server_address[1]}/metrics"
        return str(urllib.request.urlopen(url, timeout=10).read().decode())
    finally:
        http.shutdown()


def serve_epoch(server: BatchServer, job: str) -> int:
    with BatchClient(
        f"127.0.0.1:{server.port}", "news", batch_size=10, columns=["id"], job=job
    ) as client:
        return sum(1 for _ in client)


def test_latencies_are_histograms_labelled_by_dataset_and_selector(servers) -> None:  # type: ignore[no-untyped-def]
    server = servers[0]
    batches = serve_epoch(server, "first") + serve_epoch(server, "second")
    metrics = server.servicer.metrics
    labels = {"dataset": "news", "selector": "uniform"}
    for histogram in ("batchcraft_selection_seconds", "batchcraft_batch_latency_seconds"):
        assert metrics.value(f"{histogram}_count", **labels) == batches
        assert metrics.value(f"{histogram}_bucket", **labels, le="+Inf") == batches
        assert metrics.value(f"{histogram}_sum", **labels) > 0
    assert metrics.value("batchcraft_batches_total", **labels) == batches
    text = scrape(server)
    assert "# TYPE batchcraft_selection_seconds histogram" in text
    assert (
        'batchcraft_batch_latency_seconds_bucket{dataset="news",le="0.001",selector="uniform"}'
        in text
    )


def test_no_series_of_a_job_outlives_its_sessions(servers) -> None:  # type: ignore[no-untyped-def]
    server = servers[0]
    serve_epoch(server, "gone")
    metrics = server.servicer.metrics
    deadline = time.monotonic() + 20
    while metrics.value("batchcraft_sessions") and time.monotonic() < deadline:
        time.sleep(0.02)  # the server ends the session just after the client's last ack
    assert metrics.value("batchcraft_sessions") == 0
    text = scrape(server)
    assert "job=" not in text and "rank=" not in text


def test_each_server_counts_its_own_batches(servers) -> None:  # type: ignore[no-untyped-def]
    served = serve_epoch(servers[0], "mine")
    labels = {"dataset": "news", "selector": "uniform"}
    assert servers[0].servicer.metrics.value("batchcraft_batches_total", **labels) == served
    assert servers[1].servicer.metrics.value("batchcraft_batches_total", **labels) == 0
