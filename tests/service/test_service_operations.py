"""Flow control, Prometheus metrics, provenance log and the serve CLI's settings."""

from __future__ import annotations

import json
import queue
import re
import time
import urllib.request
from pathlib import Path

import grpc
import pytest

from batchcraft.api.v1 import batch_service_pb2 as pb
from batchcraft.api.v1 import batch_service_pb2_grpc as pb_grpc
from batchcraft.batcher.datasets import DatasetRegistry
from batchcraft.batcher.served_dataset import CuratedDataset
from batchcraft.service import BatchClient, ServerConfig, create_server
from batchcraft.service.cli import add_serve_arguments, server_config
from batchcraft.service.serve_settings import dataset_paths
from batchcraft.service.server.metrics import job_label, start_metrics_server

pytestmark = pytest.mark.grpc


@pytest.fixture
def server(curated_dir: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    registry = DatasetRegistry([CuratedDataset.open(curated_dir, "news")])
    config = ServerConfig(fsync=False, provenance_dir=tmp_path / "provenance", max_in_flight=16)
    started = create_server(registry, config).start()
    yield started
    started.stop(grace=0)


def wait_until(condition, timeout: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_stalled_client_gets_no_more_than_max_in_flight(server) -> None:  # type: ignore[no-untyped-def]
    metrics = server.servicer.metrics
    labels = {"dataset": "news", "selector": "uniform"}  # bounded: no per-job series
    # lives while the session does; the job is labelled by a hash of its id (issue 17, defect 8)
    stream = {"dataset": "news", "job": job_label("stall"), "rank": "0"}
    requests: queue.Queue = queue.Queue()
    open_request = pb.OpenSession(
        dataset="news", batch_size=4, world_size=1, job="stall", max_in_flight=3, num_epochs=0
    )
    requests.put(pb.SessionRequest(open=open_request))
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        call = pb_grpc.BatchServiceStub(channel).Session(iter(requests.get, None))
        assert wait_until(lambda: metrics.value("batchcraft_batches_total", **labels) >= 3)
        time.sleep(0.5)  # a stalled client: nothing read, nothing acknowledged
        assert metrics.value("batchcraft_batches_total", **labels) == 3
        assert metrics.value("batchcraft_in_flight", **stream) == 3
        responses = iter(call)
        assert next(responses).WhichOneof("kind") == "opened"
        first = next(responses).batch
        requests.put(pb.SessionRequest(ack=pb.Ack(count=1, next=first.next)))
        assert wait_until(lambda: metrics.value("batchcraft_batches_total", **labels) == 4)
        call.cancel()
        requests.put(None)


def test_metrics_endpoint_and_provenance_log(server, kept_ids: list[str], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client = BatchClient(
        f"127.0.0.1:{server.port}", "news", batch_size=10, columns=["id"], job="ops"
    )
    batches = [list(b["id"]) for b in client]
    client.close()
    http = start_metrics_server(server.servicer.metrics, "127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{http.server_address[1]}/metrics"
        text = urllib.request.urlopen(url, timeout=10).read().decode()
    finally:
        http.shutdown()
    assert f'batchcraft_batches_total{{dataset="news",selector="uniform"}} {len(batches)}' in text
    assert "# TYPE batchcraft_bytes_total counter" in text
    assert "batchcraft_selection_seconds_count" in text

    path = tmp_path / "provenance" / "news" / "ops.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["ids"] for r in records] == batches
    assert sorted(i for r in records for i in r["ids"]) == sorted(kept_ids)
    assert {r["selector"] for r in records} == {"uniform"}
    assert records[0]["batch_id"] == "ops/e0/s0/r0"
    assert set(records[0]) == {
        "job",
        "epoch",
        "step",
        "rank",
        "selector",
        "ids",
        "batch_id",
        "info",
        "time",
    }


@pytest.mark.parametrize("entry", ["batchcraft serve", "batchcraft.service.cli"])
def test_config_file_mirrors_flags_and_command_line_wins(
    tmp_path: Path, curated_dir: Path, entry: str
) -> None:
    import argparse

    from batchcraft.cli import build_parser

    (tmp_path / "token").write_text("abc\n")
    config = tmp_path / "serve.toml"
    config.write_text(
        f'max_in_flight = 5\nmax_message_mb = 64\ntoken_file = "{tmp_path / "token"}"\n'
        f'tls_cert = "c.pem"\ntls_key = "k.pem"\ncache_dir = "cache"\n'
        f'[datasets]\nother = "{curated_dir}"\n'
    )
    flags = [str(curated_dir), "--name", "news", "--max-in-flight", "7", "--config", str(config)]
    if entry == "batchcraft serve":  # the console script's parser (its defaults once got lost)
        args = build_parser().parse_args(["serve", *flags])
    else:
        parser = argparse.ArgumentParser()
        add_serve_arguments(parser)
        args = parser.parse_args(flags)
    from batchcraft.service.serve_settings import apply_config_file

    apply_config_file(args)
    assert (args.tls_cert, args.tls_key, args.cache_dir) == (
        Path("c.pem"),
        Path("k.pem"),
        Path("cache"),
    )  # paths, as the flags give them (TLS files are read with read_bytes)
    args.tls_cert = args.tls_key = None
    settings = server_config(args)
    assert settings.max_in_flight == 7 and settings.max_message_bytes == 64 << 20
    assert settings.token == "abc"
    assert [name for name, _ in dataset_paths(args)] == ["news", "other"]
    assert settings.provenance_dir is None  # no checkpoint dir, no --provenance-dir


def test_provenance_defaults_to_the_checkpoint_dir(tmp_path: Path) -> None:
    import argparse

    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    state = tmp_path / "state"
    default = server_config(parser.parse_args(["--checkpoint-dir", str(state)]))
    assert default.provenance_dir == state / "provenance"
    chosen = parser.parse_args(["--checkpoint-dir", str(state), "--provenance-dir", "p"])
    assert server_config(chosen).provenance_dir == Path("p")
    off = parser.parse_args(["--checkpoint-dir", str(state), "--no-provenance"])
    assert server_config(off).provenance_dir is None


@pytest.mark.parametrize(
    ("extra", "config", "message"),
    [
        (["--token-file", "missing-token"], None, "missing-token"),
        (["--tls-cert", "c.pem", "--tls-key", "k.pem"], None, "c.pem"),
        (["--port", "99999"], None, "--port 99999 is not a port"),
        ([], 'max_in_flight = "16"\n', "max_in_flight = '16' .*expected int"),
        ([], "prefetch = 1\n", "prefetch = 1 .*expected bool"),
        ([], 'datasets = "x"\n', "datasets .* must be a table"),
    ],
)
def test_serve_flag_errors_are_one_line_exit_2(  # type: ignore[no-untyped-def]
    tmp_path: Path, curated_dir: Path, capsys, monkeypatch, extra, config, message
) -> None:
    from batchcraft.service.cli import serve_main

    monkeypatch.chdir(tmp_path)
    flags = [str(curated_dir), "--port", "0", *extra]
    if config is not None:
        (tmp_path / "serve.toml").write_text(config)
        flags += ["--config", "serve.toml"]
    assert serve_main(flags) == 2
    # batchcraft's own lines only (a stopped Spark session's py4j thread may log here too)
    lines = [line for line in capsys.readouterr().err.splitlines() if "batchcraft" in line]
    assert len(lines) == 1 and lines[0].startswith("batchcraft serve: error:"), lines
    assert re.search(message, lines[0]), lines


def test_a_metrics_port_in_use_is_a_one_line_error(
    tmp_path: Path, curated_dir: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    import socket

    from batchcraft.service.cli import serve_main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert serve_main([str(curated_dir), "--port", "0", "--metrics-port", str(port)]) == 2
    assert "batchcraft serve: error:" in capsys.readouterr().err


def test_a_failed_save_at_session_end_does_not_fail_a_served_epoch(  # type: ignore[no-untyped-def]
    start_server, kept_ids: list[str], monkeypatch, caplog
) -> None:
    from batchcraft.batcher.registry import JobRegistry
    from batchcraft.service import BatchClient

    address = start_server()

    def unwritable(self, job) -> None:  # type: ignore[no-untyped-def]
        raise OSError("disk full")

    monkeypatch.setattr(JobRegistry, "save", unwritable)
    with (
        caplog.at_level("WARNING", logger="batchcraft.service"),
        BatchClient(address, "news", batch_size=8, columns=["id"], job="save-fails") as client,
    ):
        served = [i for batch in client for i in batch["id"]]
    assert sorted(served) == sorted(kept_ids)
    assert "session_save_failed" in caplog.text and "disk full" in caplog.text
