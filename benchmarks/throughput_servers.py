"""The servers `serve_throughput.py` compares, each run in a process of its own: the
``batchcraft serve`` command line, an Arrow Flight server and a bare Python gRPC server,
all three serving the same job's batches."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight

from batchcraft.batcher.config import JobConfig
from batchcraft.batcher.job import Job
from batchcraft.batcher.served_dataset import CuratedDataset
from batchcraft.batcher.stream import RankStream

COLUMNS = ["embedding", "tokens"]


def job_batches(dataset: CuratedDataset, batch_size: int, count: int) -> Iterator[pa.RecordBatch]:
    """The first ``count`` uniform batches of the job both servers serve."""
    stream = RankStream(Job("bench", JobConfig("bench", batch_size=batch_size, seed=0), dataset), 0)
    for _ in range(count):
        yield dataset.rows(stream.next().positions, COLUMNS)


class BatchFlightServer(flight.FlightServerBase):
    """Flight server whose ticket ``"<batch_size>:<count>"`` streams the job's batches."""

    def __init__(self, location: str, root: Path) -> None:
        super().__init__(location)
        self.dataset = CuratedDataset.open(root, "bench")  # opened once, as batchcraft does

    def do_get(
        self, context: flight.ServerCallContext, ticket: flight.Ticket
    ) -> flight.FlightDataStream:
        batch_size, count = (int(v) for v in ticket.ticket.decode().split(":"))
        batches = job_batches(self.dataset, batch_size, count)
        first = next(batches)
        return flight.GeneratorStream(first.schema, _chain(first, batches))


def _chain(first: pa.RecordBatch, rest: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    yield first
    yield from rest


def serve_plain_grpc(root: Path, port_file: Path) -> None:
    """A bare Python gRPC server whose ``Stream`` sends one ready-made message over and over.

    The request is ``"<batch_size>:<count>"``; the message is the IPC payload of
    the job's first batch of that size. No selection, gather or encoding: this
    is the most any Python grpcio service can do on this machine.
    """
    import grpc

    dataset = CuratedDataset.open(root, "bench")

    def stream(request: bytes, context: Any) -> Iterator[bytes]:
        batch_size, count = (int(v) for v in request.decode().split(":"))
        message = next(job_batches(dataset, batch_size, 1)).serialize().to_pybytes()
        for _ in range(count):
            yield message

    server = grpc.server(
        futures.ThreadPoolExecutor(4), options=[("grpc.max_send_message_length", 256 << 20)]
    )
    handler = grpc.unary_stream_rpc_method_handler(stream)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("bench.Plain", {"Stream": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    port_file.write_text(str(port))
    server.wait_for_termination()


class ServerProcess:
    """A server in a subprocess; its port comes through a file."""

    def __init__(self, args: list[str], port_file: Path) -> None:
        self.process = subprocess.Popen([sys.executable, *args], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while not (port_file.exists() and port_file.read_text()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                raise RuntimeError(f"server {args} did not start")
            time.sleep(0.05)
        self.address = f"127.0.0.1:{port_file.read_text()}"

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server so far (0 where /proc is missing)."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def serve_args(root: Path, port_file: Path, *extra: str) -> list[str]:
    return [
        "-m",
        "batchcraft.service.cli",
        str(root),
        "--name",
        "bench",
        "--port",
        "0",
        "--port-file",
        str(port_file),
        "--log-level",
        "WARNING",
        "--max-in-flight",
        "16",
        *extra,
    ]
