"""Fixtures of the service tests: datasets, in-process servers and server processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchcraft.batcher.datasets import DatasetRegistry
from batchcraft.batcher.served_dataset import CuratedDataset
from batchcraft.service import BatchServer, ServerConfig, create_server
from batchcraft.synth.curated import write_curated_dataset

pytestmark = pytest.mark.grpc


@pytest.fixture(scope="session")
def curated_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """121 rows in 3 shards with pairs, every 6th a removed duplicate (101 kept)."""
    root = tmp_path_factory.mktemp("curated")
    return write_curated_dataset(
        root, num_rows=121, num_shards=3, duplicate_every=6, with_pairs=True
    )


@pytest.fixture(scope="session")
def kept_ids(curated_dir: Path) -> list[str]:
    return CuratedDataset.open(curated_dir).ids.tolist()


@pytest.fixture
def start_server(curated_dir: Path) -> Iterator:
    """Factory: an in-process server on 127.0.0.1:0 serving ``curated_dir`` as ``news``."""
    servers: list[BatchServer] = []

    def start(**overrides: object) -> str:
        registry = DatasetRegistry([CuratedDataset.open(curated_dir, "news")])
        server = create_server(registry, ServerConfig(fsync=False, **overrides)).start()  # type: ignore[arg-type]
        servers.append(server)
        return f"127.0.0.1:{server.port}"

    yield start
    for server in servers:
        server.stop(grace=0)


@pytest.fixture
def address(start_server) -> str:  # type: ignore[no-untyped-def]
    return start_server()


class ServerProcess:
    """``python -m batchcraft.service.cli`` in a subprocess; the port comes from --port-file."""

    def __init__(self, args: list[str], workdir: Path) -> None:
        self.port_file = workdir / f"port-{time.monotonic_ns()}"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        command = [
            sys.executable,
            "-m",
            "batchcraft.service.cli",
            "--port",
            "0",
            "--port-file",
            str(self.port_file),
            *args,
        ]
        self.process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 30
        while not self.port_file.exists() or not self.port_file.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                out, err = self.process.communicate()
                raise RuntimeError(
                    f"server did not start (exit {self.process.returncode}):\n{out}\n{err}"
                )
            time.sleep(0.05)
        self.address = f"127.0.0.1:{self.port_file.read_text()}"

    def kill(self) -> None:
        """SIGKILL: no chance to save anything."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator:
    """Factory of server processes, all stopped at the end of the test."""
    processes: list[ServerProcess] = []

    def start(*args: str) -> ServerProcess:
        process = ServerProcess(list(args), tmp_path)
        processes.append(process)
        return process

    yield start
    for process in processes:
        process.stop()
