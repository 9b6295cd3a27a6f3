"""The server side of `train_through_service.py`: ``batchcraft serve`` in its own process,
its /metrics and CPU time, the 512 KiB throughput row, and the machine it all runs on."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import machine
import numpy as np
import psutil
from prometheus_client.parser import text_string_to_metric_families

from batchcraft.service import BatchClient
from batchcraft.synth.curated import write_curated_dataset

# ----------------------------------------------------------------------------- the server


class ServerProcess:
    """``python -m batchcraft.service.cli`` serving ``datasets``, with /metrics on a free port."""

    def __init__(
        self, datasets: dict[str, Path], work: Path, threads: int = 1, extra: tuple[str, ...] = ()
    ) -> None:
        port_file, self.log = work / "port", work / "serve.log"
        environment = dict(os.environ)
        if threads > 0:  # torch's intra-op threads in the server (JEST's scoring)
            environment["OMP_NUM_THREADS"] = str(threads)
        command = [sys.executable, "-m", "batchcraft.service.cli"]
        for name, path in datasets.items():
            command += ["--name", f"{name}={path}"]
        command += ["--port", "0", "--port-file", str(port_file), "--metrics-port", "0", *extra]
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=log, env=environment
            )
        deadline = time.monotonic() + 120
        while not (port_file.exists() and port_file.read_text()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                raise RuntimeError(f"server did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)
        self.address = f"127.0.0.1:{port_file.read_text()}"
        self.metrics_url = f"http://127.0.0.1:{self._metrics_port()}/metrics"
        self.psutil = psutil.Process(self.process.pid)

    def _metrics_port(self) -> int:
        """The port the server logged for /metrics (``{"event": "metrics", "port": N}``)."""
        for line in self.log.read_text().splitlines():
            record = json.loads(line) if line.startswith("{") else {}
            if record.get("event") == "metrics":
                return int(record["port"])
        raise RuntimeError(f"the server logged no metrics port: {self.log.read_text()[-2000:]}")

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the server process so far."""
        times = self.psutil.cpu_times()
        return times.user + times.system

    def counters(self, dataset: str, selector: str) -> dict[str, float]:
        """Selection seconds and batch count of (dataset, selector), scraped from /metrics."""
        with urllib.request.urlopen(self.metrics_url, timeout=10) as response:
            text = response.read().decode()
        wanted = {
            "batchcraft_selection_seconds_sum": "selection_seconds",
            "batchcraft_selection_seconds_count": "selections",
            "batchcraft_batches_total": "batches",
        }
        found = dict.fromkeys(wanted.values(), 0.0)
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                ours = sample.labels == {"dataset": dataset, "selector": selector}
                if sample.name in wanted and ours:
                    found[wanted[sample.name]] += sample.value
        return found

    def snapshot(self, dataset: str, selector: str) -> dict[str, float]:
        return {**self.counters(dataset, selector), "cpu_seconds": self.cpu_seconds()}

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)


# ----------------------------------------------------------------------------- throughput


def throughput_dataset(root: Path) -> Path:
    """256 rows of 384 float32 + 128 int32 = 512 KiB batches (serve_throughput.py's)."""
    return write_curated_dataset(root, num_rows=40000, dim=384, num_tokens=128, num_shards=4)


def batches_per_second(
    server: ServerProcess, selector: str, seconds: float, reports: bool | None = None
) -> float:
    """A client that reports a loss for every row it receives (a feedback selector's
    trainer, minus the training; ``reports`` None: for every selector but uniform):
    batches/s after a one-second warm-up."""
    client = BatchClient(
        server.address, "throughput", selector, 256, columns=["id", "embedding", "tokens"],
        num_epochs=0, max_in_flight=16, job=f"throughput-{selector}-{time.monotonic_ns()}",
    )  # fmt: skip
    losses = np.random.default_rng(0).random(256).astype(np.float32)
    reports = selector != "uniform" if reports is None else reports
    count, started, counting = 0, time.perf_counter(), None
    with client:
        for batch in client:
            if reports:
                client.report(batch["id"], losses=losses[: len(batch["id"])])
            now = time.perf_counter()
            if counting is None and now - started > 1.0:
                counting, count = now, 0
            count += 1
            if counting is not None and now - counting > seconds:
                return count / (now - counting)
    raise RuntimeError("the endless stream ended")


def throughput_row(server: ServerProcess, rounds: int, seconds: float) -> dict[str, Any]:
    """jest with feedback against uniform at 512 KiB, alternating, medians of ``rounds``."""
    measured: dict[str, list[float]] = {"uniform": [], "jest": []}
    server_share = []
    for _ in range(rounds):
        for selector in ("uniform", "jest"):
            before = server.snapshot("throughput", selector)
            measured[selector].append(batches_per_second(server, selector, seconds))
            after = server.snapshot("throughput", selector)
            if selector == "jest":
                cpu = after["cpu_seconds"] - before["cpu_seconds"]
                spent = after["selection_seconds"] - before["selection_seconds"]
                server_share.append(spent / cpu)
    jest, uniform = statistics.median(measured["jest"]), statistics.median(measured["uniform"])
    print(f"  throughput: jest {measured['jest']}, uniform {measured['uniform']}", flush=True)
    return {"jest_batches_per_second": jest, "uniform_batches_per_second": uniform,
            "selection_share": statistics.median(server_share), "rounds": measured,
            "goal": "≥ 500 batches/s", "met": jest >= 500}  # fmt: skip


def machine_lines() -> list[str]:
    """CPU model and flags, cores, load, and the versions the figures depend on."""
    return machine.machine_lines(note="torch threads 1")
