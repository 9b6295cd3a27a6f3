"""Selection ahead of demand: batches/s of each selector with and without selection workers.

One `batchcraft serve` process per setting (``--selection-workers 0``: every
selection on the request path; ``--selection-workers N``: N worker processes
select up to ``--lookahead`` steps ahead), each serving the same 512 KiB
batches (256 rows x (384 float32 + 128 int32)) to a client in this process.
Per selector, batches/s over a few seconds, settings alternating for
``--rounds`` rounds, medians reported, and uniform measured in the same run as
the reference. ``jest`` gets a loss for every row it sends (a trainer's
feedback; it then selects ahead within ``--feedback-staleness``); the others
get none. ``hard_negative`` (NGAME's curriculum: cluster size 1, 2, 4, ... 16) plans
whole epochs: with workers, the next epochs are planned while one is served.
Time to first batch: a new job's first batch, from opening the session, per
selector and setting, against uniform's.

Then epoch plans: ``batchcraft plan`` (Spark, ``local[*]``) computes
whole epochs (at least ``--plan-batches`` batches) of ``concept`` and ``coreset`` for the same job, a third
server serves them (``--plans``), and a client reads those epochs end to end,
against uniform over as many batches from the same server.

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

from train_server import ServerProcess, batches_per_second, machine_lines, throughput_dataset

from batchcraft.batcher.config import JobConfig
from batchcraft.batcher.job import Job
from batchcraft.batcher.served_dataset import CuratedDataset
from batchcraft.planning.spark_plan import PlanRequest, build_plan
from batchcraft.service import BatchClient

SELECTORS = ("uniform", "concept", "coreset", "hard_negative", "jest")
REPORTS = {"jest"}  # selectors whose client reports per-row losses


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
    parser.add_argument(
        "--plan-batches",
        type=int,
        default=600,
        help="batches per plan (whole epochs, at least this many); 0 skips plans (default: 600)",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    for line in machine_lines():
        print(line, flush=True)
    settings = {"on demand": "0", f"{args.workers} workers": str(args.workers)}
    measured: dict[str, dict[str, list[float]]] = {s: {n: [] for n in SELECTORS} for s in settings}
    firsts: dict[str, dict[str, list[float]]] = {s: {n: [] for n in SELECTORS} for s in settings}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        dataset = throughput_dataset(work / "throughput")
        servers = {}
        for label, workers in settings.items():
            (work / workers).mkdir()
            servers[label] = ServerProcess(
                {"throughput": dataset}, work / workers, extra=("--selection-workers", workers)
            )
        planned: dict[str, list[float]] = {}
        if args.plan_batches > 0:
            servers["from a plan"] = plan_server(dataset, work, args.plan_batches)
        try:
            for server in servers.values():  # workers started, torch imported, rows mapped
                for selector in SELECTORS:
                    first_batch_seconds(server, selector)
            if args.plan_batches > 0:
                planned = measure_plans(servers["from a plan"], args.plan_batches, args.rounds)
            for _ in range(args.rounds):
                for selector in SELECTORS:
                    for label in settings:
                        server = servers[label]
                        rate = batches_per_second(
                            server, selector, args.seconds, selector in REPORTS
                        )
                        measured[label][selector].append(rate)
                        first = first_batch_seconds(server, selector)
                        firsts[label][selector].append(first)
                        print(f"  {label:>10} {selector:<13} {rate:8.1f} batches/s, first batch "
                              f"{1000 * first:6.1f} ms", flush=True)  # fmt: skip
        finally:
            for server in servers.values():
                server.process.kill()
    medians = {
        s: {n: statistics.median(v) for n, v in rates.items()} for s, rates in measured.items()
    }
    first_medians = {
        s: {n: statistics.median(v) for n, v in times.items()} for s, times in firsts.items()
    }
    print_table(medians, first_medians, list(settings))
    plan_medians = {name: statistics.median(rates) for name, rates in planned.items()}
    for name in PLANNED:
        if name in plan_medians:
            ratio = plan_medians[name] / plan_medians["uniform"]
            print(f"| {name}, from a plan | {plan_medians[name]:,.0f} | uniform, same server: "
                  f"{plan_medians['uniform']:,.0f} | {ratio:.2f}× | goal ≥ 0.8× |")  # fmt: skip
    if args.json is not None:
        results = {"medians": medians, "runs": measured, "plans": planned,
                   "first_batch_seconds": first_medians}  # fmt: skip
        args.json.write_text(json.dumps(results, indent=1))
    return 0


PLANNED = ("concept", "coreset", "hard_negative")
PLAN_EPOCHS: dict[str, int] = {}


def plan_server(dataset: Path, work: Path, batches: int) -> ServerProcess:
    """Plans of `PLANNED` for the benchmark's jobs (batch 256, seed 0), and a server of them."""
    plans = []
    for selector in PLANNED:
        started = time.perf_counter()
        steps = Job("plan", JobConfig("d", selector, batch_size=256), CuratedDataset.open(dataset))
        epochs = -(-batches // steps.steps_in(0))
        request = PlanRequest(dataset, work / f"plan-{selector}", selector, batch_size=256,
                              epochs=epochs, master="local[*]")  # fmt: skip
        plans.append(str(build_plan(request).path))
        PLAN_EPOCHS[selector] = epochs
        print(f"  planned {epochs} epochs of {selector} in {time.perf_counter() - started:.1f} s")
    (work / "plans").mkdir()
    extra = ("--selection-workers", "0", "--plans", *plans)
    return ServerProcess({"throughput": dataset}, work / "plans", extra=extra)


def measure_plans(server: ServerProcess, batches: int, rounds: int) -> dict[str, list[float]]:
    """Batches/s reading every planned epoch, and uniform over as many batches."""
    rates: dict[str, list[float]] = {name: [] for name in ("uniform", *PLANNED)}
    for _ in range(rounds):
        counts = {}
        for selector in PLANNED:
            rate, counts[selector] = read_epochs(server, selector, PLAN_EPOCHS[selector])
            rates[selector].append(rate)
        uniform_epochs = max(1, round(statistics.mean(counts.values()) / 157))  # 40,000 / 256
        rates["uniform"].append(read_epochs(server, "uniform", uniform_epochs)[0])
        print(f"  from a plan: { {k: round(v[-1]) for k, v in rates.items()} }", flush=True)
    return rates


def read_epochs(server: ServerProcess, selector: str, epochs: int) -> tuple[float, int]:
    """(batches/s, batches) of ``epochs`` whole epochs, timed from the first batch."""
    client = BatchClient(
        server.address, "throughput", selector, 256, columns=["id", "embedding", "tokens"],
        num_epochs=epochs, max_in_flight=16, job=f"plan-{selector}-{time.monotonic_ns()}",
    )  # fmt: skip
    count, started = 0, 0.0
    with client:
        for _ in client:
            count += 1
            if count == 1:
                started = time.perf_counter()
    return (count - 1) / (time.perf_counter() - started), count


def first_batch_seconds(server: ServerProcess, selector: str) -> float:
    """Seconds from opening a new job's session to its first batch (a trainer's start)."""
    started = time.perf_counter()
    client = BatchClient(
        server.address, "throughput", selector, 256, columns=["id", "embedding", "tokens"],
        num_epochs=1, max_in_flight=16, job=f"first-{selector}-{time.monotonic_ns()}",
    )  # fmt: skip
    with client:
        batches = iter(client)  # kept: a dropped iterator ends its session at once
        next(batches)
        return time.perf_counter() - started


def print_table(
    medians: dict[str, dict[str, float]], firsts: dict[str, dict[str, float]], labels: list[str]
) -> None:
    on_demand, ahead = labels
    print(f"\n| selector | {on_demand}, batches/s | {ahead}, batches/s | ratio | vs uniform "
          f"| first batch, {ahead} | vs uniform's |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    uniform, uniform_first = medians[on_demand]["uniform"], firsts[ahead]["uniform"]
    for selector in SELECTORS:
        before, after = medians[on_demand][selector], medians[ahead][selector]
        first = firsts[ahead][selector]
        print(
            f"| {selector} | {before:,.0f} | {after:,.0f} | {after / before:.2f}× "
            f"| {after / uniform:.2f}× | {1000 * first:.0f} ms | {first / uniform_first:.2f}× |"
        )


if __name__ == "__main__":
    raise SystemExit(main())
