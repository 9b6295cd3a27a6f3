"""Selection ahead of demand: batches/s of each selector with and without selection workers.

One `batchcraft serve` process per setting (``--selection-workers 0``: every
selection on the request path; ``--selection-workers N``: N worker processes
select up to ``--lookahead`` steps ahead), each serving the same 512 KiB
batches (256 rows x (384 float32 + 128 int32)) to a client in this process.
Per selector, batches/s over a few seconds, settings alternating for
``--rounds`` rounds, medians reported, and uniform measured in the same run as
the reference. ``jest`` gets a loss for every row it sends (a trainer's
feedback; it then selects ahead within ``--feedback-staleness``); the others
get none. ``hard_negative`` plans whole epochs and is not selected ahead.

    python benchmarks/lookahead_throughput.py [--rounds 3] [--seconds 5] [--json out.json]

The client shares the machine's cores with the server and its workers, so on a
2-core machine the workers compete with the trainer; the figures say what the
look-ahead gives on this machine, printed first. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from train_server import ServerProcess, machine_lines, throughput_dataset

from batchcraft.service import BatchClient

SELECTORS = ("uniform", "concept", "coreset", "jest")
REPORTS = {"jest"}  # selectors whose client reports per-row losses


def batches_per_second(server: ServerProcess, selector: str, seconds: float) -> float:
    """Batches/s of one endless job after a one-second warm-up."""
    client = BatchClient(
        server.address, "throughput", selector, 256, columns=["id", "embedding", "tokens"],
        num_epochs=0, max_in_flight=16, job=f"{selector}-{time.monotonic_ns()}",
    )  # fmt: skip
    losses = np.random.default_rng(0).random(256).astype(np.float32)
    count, started, counting = 0, time.perf_counter(), None
    with client:
        for batch in client:
            if selector in REPORTS:
                client.report(batch["id"], losses=losses[: len(batch["id"])])
            now = time.perf_counter()
            if counting is None and now - started > 1.0:
                counting, count = now, 0
            count += 1
            if counting is not None and now - counting > seconds:
                return count / (now - counting)
    raise RuntimeError("the endless stream ended")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default: 3)")
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement (default: 5)")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="selection workers (default: cores)",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    for line in machine_lines():
        print(line, flush=True)
    settings = {"on demand": "0", f"{args.workers} workers": str(args.workers)}
    measured: dict[str, dict[str, list[float]]] = {s: {n: [] for n in SELECTORS} for s in settings}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        dataset = throughput_dataset(work / "throughput")
        servers = {}
        for label, workers in settings.items():
            (work / workers).mkdir()
            servers[label] = ServerProcess(
                {"throughput": dataset}, work / workers, extra=("--selection-workers", workers)
            )
        try:
            for _ in range(args.rounds):
                for selector in SELECTORS:
                    for label, server in servers.items():
                        rate = batches_per_second(server, selector, args.seconds)
                        measured[label][selector].append(rate)
                        print(f"  {label:>10} {selector:<8} {rate:8.1f} batches/s", flush=True)
        finally:
            for server in servers.values():
                server.process.kill()
    medians = {
        s: {n: statistics.median(v) for n, v in rates.items()} for s, rates in measured.items()
    }
    print_table(medians, list(settings))
    if args.json is not None:
        args.json.write_text(json.dumps({"medians": medians, "runs": measured}, indent=1))
    return 0


def print_table(medians: dict[str, dict[str, float]], labels: list[str]) -> None:
    on_demand, ahead = labels
    print(f"\n| selector | {on_demand}, batches/s | {ahead}, batches/s | ratio | vs uniform |")
    print("|---|---|---|---|---|")
    uniform = medians[on_demand]["uniform"]
    for selector in SELECTORS:
        before, after = medians[on_demand][selector], medians[ahead][selector]
        print(
            f"| {selector} | {before:,.0f} | {after:,.0f} | {after / before:.2f}× "
            f"| {after / uniform:.2f}× |"
        )


if __name__ == "__main__":
    raise SystemExit(main())
