"""Throughput of `batchcraft serve` against Arrow Flight ``do_get`` on the same batches.

Every server runs in its own process (see ``throughput_servers.py``); this
process is the client. Both systems serve exactly the same record batches (the
batchcraft job's uniform selections, gathered with the same code, 256 rows x
(384 float32 + 128 int32) = 512 KiB, and 32 rows = 64 KiB), so the comparison
isolates the transport.
Runs alternate between the systems for several rounds and the median is
reported, because a shared machine's load drifts between runs.

    python benchmarks/serve_throughput.py            # full run (~1-2 min)
    python benchmarks/serve_throughput.py --quick    # smoke run

Reported per run: batches/s, MB/s (payload bytes), time to first batch
(connect + open + first batch), and CPU time per batch of the client (this
process) and of the server process (Linux ``/proc``), which is what bounds
throughput when client and server share a small machine. Ablations show
batchcraft without packing (one batch per message) and with the encoding
thread (``--prefetch``). "plain grpc" is a bare Python gRPC server sending
one ready-made message of the same size over and over to a client that only
counts bytes: the ceiling of any Python grpcio service on this machine. Then
batchcraft throughput per selector. Not a test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight
from throughput_servers import (
    COLUMNS,
    BatchFlightServer,
    ServerProcess,
    serve_args,
    serve_plain_grpc,
)

from batchcraft.selectors import SELECTORS
from batchcraft.service import BatchClient
from batchcraft.synth.curated import write_curated_dataset

SIZES = {"512KiB": 256, "64KiB": 32}


def measure(
    open_batches: Callable[[], Iterator[Any]],
    nbytes: Callable[[Any], int],
    server: ServerProcess,
    warmup: int,
) -> dict[str, float]:
    """Time to the first batch, then throughput and CPU per batch after ``warmup`` batches."""
    started = time.perf_counter()
    batches = open_batches()
    next(batches)
    first = time.perf_counter() - started
    for _ in range(warmup - 1):
        next(batches)
    started, cpu, server_cpu = time.perf_counter(), time.process_time(), server.cpu_seconds()
    total = count = 0
    for batch in batches:
        total += nbytes(batch)
        count += 1
    elapsed = time.perf_counter() - started
    return {
        "batches_per_s": count / elapsed,
        "mb_per_s": total / elapsed / 1e6,
        "first_batch_ms": first * 1e3,
        "client_cpu_us": (time.process_time() - cpu) / count * 1e6,
        "server_cpu_us": (server.cpu_seconds() - server_cpu) / count * 1e6,
    }


def run_batchcraft(
    server: ServerProcess, batch_size: int, count: int, selector: str = "uniform", packing: int = 16
) -> dict[str, float]:
    client = BatchClient(
        server.address,
        "bench",
        selector,
        batch_size,
        columns=COLUMNS,
        num_epochs=0,
        max_in_flight=16,
        job=f"{selector}-{batch_size}-{time.monotonic_ns()}",
        max_batches_per_message=packing,
    )
    warmup = min(20, count // 5)

    def batches() -> Iterator[dict[str, Any]]:
        for index, batch in enumerate(client):
            yield batch
            if index + 1 >= count + warmup:
                return

    try:
        return measure(
            batches, lambda b: b["embedding"].nbytes + b["tokens"].nbytes, server, warmup
        )
    finally:
        client.close()


def run_flight(server: ServerProcess, batch_size: int, count: int) -> dict[str, float]:
    warmup = min(20, count // 5)
    clients: list[flight.FlightClient] = []

    def batches() -> Iterator[pa.RecordBatch]:
        client = flight.connect(f"grpc://{server.address}")
        clients.append(client)
        reader = client.do_get(flight.Ticket(f"{batch_size}:{count + warmup}".encode()))
        return (chunk.data for chunk in reader)

    try:
        return measure(batches, lambda b: b.nbytes, server, warmup)
    finally:
        for client in clients:
            client.close()


def run_plain_grpc(server: ServerProcess, batch_size: int, count: int) -> dict[str, float]:
    import grpc

    warmup = min(20, count // 5)
    channels: list[Any] = []

    def batches() -> Iterator[bytes]:
        channel = grpc.insecure_channel(
            server.address, options=[("grpc.max_receive_message_length", 256 << 20)]
        )
        channels.append(channel)
        return iter(
            channel.unary_stream("/bench.Plain/Stream")(f"{batch_size}:{count + warmup}".encode())
        )

    try:
        return measure(batches, len, server, warmup)
    finally:
        for channel in channels:
            channel.close()


def median_runs(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: round(statistics.median(r[key] for r in runs), 1) for key in runs[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few batches, for a smoke run")
    parser.add_argument("--rounds", type=int, help="alternating rounds per comparison")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--serve-flight", nargs=2, metavar=("ROOT", "PORT_FILE"), help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--serve-plain-grpc", nargs=2, metavar=("ROOT", "PORT_FILE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.serve_plain_grpc:
        serve_plain_grpc(Path(args.serve_plain_grpc[0]), Path(args.serve_plain_grpc[1]))
        return 0
    if args.serve_flight:
        server = BatchFlightServer("grpc://127.0.0.1:0", Path(args.serve_flight[0]))
        Path(args.serve_flight[1]).write_text(str(server.port))
        server.serve()
        return 0
    rows, count, rounds = (4096, 200, 2) if args.quick else (16384, 1000, 3)
    rounds = args.rounds or rounds
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        root = write_curated_dataset(
            work / "bench", num_rows=rows, dim=384, num_tokens=128, num_shards=4, with_pairs=True
        )
        servers = {
            "batchcraft": ServerProcess(serve_args(root, work / "bc"), work / "bc"),
            "prefetch": ServerProcess(serve_args(root, work / "pf", "--prefetch"), work / "pf"),
            "flight": ServerProcess(
                [os.path.abspath(__file__), "--serve-flight", str(root), str(work / "fl")],
                work / "fl",
            ),
            "plain": ServerProcess(
                [os.path.abspath(__file__), "--serve-plain-grpc", str(root), str(work / "pg")],
                work / "pg",
            ),
        }
        try:
            results = compare(servers, count, rounds)
            for selector in sorted(SELECTORS):
                results[f"batchcraft 512KiB {selector}"] = median_runs(
                    [run_batchcraft(servers["batchcraft"], 256, max(20, count // 10), selector)]
                )
        finally:
            for server in servers.values():
                server.stop()
    print_table(results)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


def compare(servers: dict[str, ServerProcess], count: int, rounds: int) -> dict[str, Any]:
    """Alternate the systems on each batch size; medians over ``rounds``."""
    variants: dict[str, Callable[[int, int], dict[str, float]]] = {
        "batchcraft": lambda size, n: run_batchcraft(servers["batchcraft"], size, n),
        "flight": lambda size, n: run_flight(servers["flight"], size, n),
        "batchcraft unpacked": lambda size, n: run_batchcraft(
            servers["batchcraft"], size, n, packing=1
        ),
        "batchcraft prefetch": lambda size, n: run_batchcraft(servers["prefetch"], size, n),
        "plain grpc": lambda size, n: run_plain_grpc(servers["plain"], size, n),
    }
    results: dict[str, Any] = {}
    for label, batch_size in SIZES.items():
        batches = count if batch_size >= 256 else count * 4
        for run in variants.values():
            run(batch_size, 40)  # warm-up: connections, imports, caches
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
        for _ in range(rounds):
            for name, run in variants.items():
                runs[name].append(run(batch_size, batches))
        for name in variants:
            results[f"{name} {label}"] = median_runs(runs[name])
    return results


def print_table(results: dict[str, Any]) -> None:
    header = f"{'run':36} {'batches/s':>10} {'MB/s':>8} {'first ms':>9} {'client us':>10} {'server us':>10}"
    print(header)
    for name, r in results.items():
        print(
            f"{name:36} {r['batches_per_s']:>10} {r['mb_per_s']:>8} {r['first_batch_ms']:>9}"
            f" {r['client_cpu_us']:>10} {r['server_cpu_us']:>10}"
        )
    print("(client us / server us: CPU time per batch in the client and server processes)")
    for label in SIZES:
        ratio = (
            results[f"batchcraft {label}"]["batches_per_s"]
            / results[f"flight {label}"]["batches_per_s"]
        )
        print(f"batchcraft / flight, {label}: {ratio:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
