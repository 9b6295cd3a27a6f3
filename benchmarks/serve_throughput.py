"""Throughput of `batchcraft serve` against Arrow Flight ``do_get`` on the same batches.

Each server runs in its own process; this process is the client. Both sides
produce exactly the same record batches (the batchcraft job's uniform
selections, gathered with the same code) so the comparison isolates the
transport: gRPC + protobuf ``bytes`` with per-batch acks versus Flight.

    python benchmarks/serve_throughput.py            # full run (~1-2 min)
    python benchmarks/serve_throughput.py --quick    # smoke run

Reports batches/s, MB/s, time to first batch, and batchcraft throughput per
selector. Not a test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.flight as flight

from batchcraft.batcher.config import JobConfig, Position
from batchcraft.batcher.dataset import CuratedDataset
from batchcraft.batcher.job import Job
from batchcraft.batcher.synthetic import write_curated_dataset
from batchcraft.selectors import SELECTORS
from batchcraft.service import BatchClient

COLUMNS = ["embedding", "tokens"]


def job_batches(root: Path, batch_size: int, count: int) -> Iterator[pa.RecordBatch]:
    """The first ``count`` uniform batches of the job both servers serve."""
    dataset = CuratedDataset.open(root, "bench")
    job = Job("bench", JobConfig("bench", batch_size=batch_size, seed=0), dataset)
    position = Position()
    for _ in range(count):
        yield dataset.rows(job.rank_batch(position, 0).positions, COLUMNS)
        position = job.next_position(position)


class BatchFlightServer(flight.FlightServerBase):
    """Flight server whose ticket ``"<batch_size>:<count>"`` streams the job's batches."""

    def __init__(self, location: str, root: Path) -> None:
        super().__init__(location)
        self.root = root

    def do_get(
        self, context: flight.ServerCallContext, ticket: flight.Ticket
    ) -> flight.FlightDataStream:
        batch_size, count = (int(v) for v in ticket.ticket.decode().split(":"))
        batches = job_batches(self.root, batch_size, count)
        first = next(batches)
        return flight.GeneratorStream(first.schema, _chain(first, batches))


def _chain(first: pa.RecordBatch, rest: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    yield first
    yield from rest


def start_process(args: list[str], port_file: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, *args], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (port_file.exists() and port_file.read_text()):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"server {args} did not start")
        time.sleep(0.05)
    return process


def measure(batches: Iterator[object], nbytes: callable) -> dict[str, float]:  # type: ignore[valid-type]
    started = time.perf_counter()
    first = total = count = 0.0
    for batch in batches:
        if count == 0:
            first = time.perf_counter() - started
        total += nbytes(batch)
        count += 1
    elapsed = time.perf_counter() - started
    return {
        "batches": count,
        "batches_per_s": round(count / elapsed, 1),
        "mb_per_s": round(total / elapsed / 1e6, 1),
        "first_batch_ms": round(first * 1e3, 1),
    }


def run_batchcraft(
    address: str, batch_size: int, count: int, selector: str = "uniform"
) -> dict[str, float]:
    client = BatchClient(
        address,
        "bench",
        selector,
        batch_size,
        columns=COLUMNS,
        num_epochs=0,
        max_in_flight=16,
        job=f"{selector}-{batch_size}-{time.monotonic_ns()}",
    )

    def batches() -> Iterator[dict]:
        for index, batch in enumerate(client):
            yield batch
            if index + 1 >= count:
                return

    result = measure(batches(), lambda b: b["embedding"].nbytes + b["tokens"].nbytes)
    client.close()
    return result


def run_flight(address: str, batch_size: int, count: int) -> dict[str, float]:
    client = flight.connect(f"grpc://{address}")
    reader = client.do_get(flight.Ticket(f"{batch_size}:{count}".encode()))
    chunks = (chunk.data for chunk in reader)
    result = measure(chunks, lambda b: b.nbytes)
    client.close()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few batches, for a smoke run")
    parser.add_argument(
        "--serve-flight", nargs=2, metavar=("ROOT", "PORT_FILE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.serve_flight:
        server = BatchFlightServer("grpc://127.0.0.1:0", Path(args.serve_flight[0]))
        Path(args.serve_flight[1]).write_text(str(server.port))
        server.serve()
        return 0
    rows, count = (4096, 100) if args.quick else (16384, 1000)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        root = write_curated_dataset(
            work / "bench", num_rows=rows, dim=384, num_tokens=128, num_shards=4, with_pairs=True
        )
        servers = [
            start_process(
                [
                    "-m",
                    "batchcraft.service.cli",
                    str(root),
                    "--name",
                    "bench",
                    "--port",
                    "0",
                    "--port-file",
                    str(work / "bc"),
                    "--log-level",
                    "WARNING",
                    "--max-in-flight",
                    "16",
                ],
                work / "bc",
            ),
            start_process(
                [os.path.abspath(__file__), "--serve-flight", str(root), str(work / "fl")],
                work / "fl",
            ),
        ]
        try:
            batchcraft = f"127.0.0.1:{(work / 'bc').read_text()}"
            flight_address = f"127.0.0.1:{(work / 'fl').read_text()}"
            results = {}
            for label, batch_size, batches in (("512KiB", 256, count), ("64KiB", 32, count * 4)):
                run_batchcraft(batchcraft, batch_size, 20)  # warm-up
                run_flight(flight_address, batch_size, 20)
                results[f"batchcraft {label}"] = run_batchcraft(batchcraft, batch_size, batches)
                results[f"flight {label}"] = run_flight(flight_address, batch_size, batches)
            for selector in sorted(SELECTORS):
                results[f"batchcraft 512KiB {selector}"] = run_batchcraft(
                    batchcraft, 256, max(20, count // 10), selector
                )
        finally:
            for server in servers:
                server.terminate()
                server.wait(timeout=10)
    print(f"{'run':34} {'batches/s':>10} {'MB/s':>8} {'first ms':>9}")
    for name, result in results.items():
        print(
            f"{name:34} {result['batches_per_s']:>10} {result['mb_per_s']:>8} {result['first_batch_ms']:>9}"
        )
    for label in ("512KiB", "64KiB"):
        ratio = (
            results[f"batchcraft {label}"]["batches_per_s"]
            / results[f"flight {label}"]["batches_per_s"]
        )
        print(f"batchcraft / flight, {label}: {ratio:.2f}x")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
