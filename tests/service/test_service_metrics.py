"""Prometheus metrics: histograms with percentiles, bounded label sets, one registry per server."""

from __future__ import annotations

import http.client as http_client
import json
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from certificates import self_signed_certificate
from raw_calls import LiveSession, open_request

from batchcraft.batcher.datasets import DatasetRegistry
from batchcraft.batcher.served_dataset import CuratedDataset
from batchcraft.service import BatchClient, BatchServer, ServerConfig, create_server
from batchcraft.service.server.metrics import job_label, start_metrics_server
from batchcraft.service.server.metrics_http import Tls

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


def fetch(
    url: str, token: str | None = None, context: ssl.SSLContext | None = None
) -> tuple[int, str]:
    """The status and body of a GET of ``url``."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as error:
        return int(error.code), ""


def test_the_metrics_endpoint_takes_a_token_of_its_own(servers) -> None:  # type: ignore[no-untyped-def]
    """/metrics needed no token when the service did: issue 17, defect 8."""
    http = start_metrics_server(servers[0].servicer.metrics, "127.0.0.1", 0, token="scrape")
    try:
        url = f"http://127.0.0.1:{http.server_address[1]}/metrics"
        assert fetch(url)[0] == 401
        assert fetch(url, "wrong")[0] == 401
        status, text = fetch(url, "scrape")
        assert status == 200 and "# TYPE batchcraft_batches_total counter" in text
    finally:
        http.shutdown()


def test_the_metrics_endpoint_speaks_tls_when_given_a_certificate(servers, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cert, key = self_signed_certificate(tmp_path)
    http = start_metrics_server(servers[0].servicer.metrics, "127.0.0.1", 0, tls=Tls(cert, key))
    try:
        port = http.server_address[1]
        trusting = ssl.create_default_context(cafile=str(cert))
        status, text = fetch(f"https://127.0.0.1:{port}/metrics", context=trusting)
        assert status == 200 and "batchcraft_sessions" in text
        with pytest.raises((urllib.error.URLError, ConnectionError, http_client.HTTPException)):
            fetch(f"http://127.0.0.1:{port}/metrics")  # no plain HTTP beside it
    finally:
        http.shutdown()


def test_no_label_holds_a_client_chosen_string(servers) -> None:  # type: ignore[no-untyped-def]
    """Stream gauges were labelled by the client's job id: issue 17, defect 8."""
    server = servers[0]
    job = "project-falcon-secret-run"
    opening = open_request(job=job, num_epochs=0, max_in_flight=1, columns=["id"])
    with LiveSession(f"127.0.0.1:{server.port}", opening) as live:
        live.batches(1)
        deadline = time.monotonic() + 10
        while f'job="{job_label(job)}"' not in (text := scrape(server)):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert "falcon" not in text
    assert f'batchcraft_in_flight{{dataset="news",job="{job_label(job)}",rank="0"}} 1.0' in text


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def logged_events(process) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    process.stop()
    lines = process.process.stderr.read().splitlines()
    return {entry["event"]: entry for entry in map(json.loads, lines) if "event" in entry}


def test_serve_keeps_metrics_on_loopback_behind_their_own_token(
    server_process, curated_dir: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "service-token").write_text("trainers\n")
    (tmp_path / "metrics-token").write_text("scrapers\n")
    port = free_port()
    server = server_process(
        str(curated_dir), "--name", "news", "--host", "0.0.0.0",
        "--token-file", str(tmp_path / "service-token"),
        "--metrics-port", str(port), "--metrics-token-file", str(tmp_path / "metrics-token"),
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/metrics"
    assert fetch(url)[0] == 401
    assert fetch(url, "trainers")[0] == 401  # the service's token opens no metrics
    assert fetch(url, "scrapers")[0] == 200
    events = logged_events(server)
    assert events["metrics"]["host"] == "127.0.0.1"  # not --host's 0.0.0.0
    assert events["metrics"]["token"] is True and "metrics_exposed" not in events
    exposed = server_process(
        str(curated_dir), "--name", "news", "--metrics-port", "0", "--metrics-host", "0.0.0.0"
    )
    warning = logged_events(exposed)["metrics_exposed"]
    assert (warning["host"], warning["token"]) == ("0.0.0.0", False)
