"""Epoch plans on executor JVMs: ``batchcraft plan`` time with 1 and 2 executors.

Runs ``batchcraft plan`` (the CLI, as a user would) on ``local-cluster[N,1,2048]``
for N = 1 and 2 (N executor JVMs of one core each, Python workers of their own)
on the throughput benchmark's dataset (40,000 rows x 384-d), alternating for
``--rounds`` rounds, and checks that every plan holds the same selections. The
ratio is the 1-executor time over the 2-executor time (2.0 would be perfect
scaling); on a 2-core machine the driver and the JVMs share the cores.

    python benchmarks/plan_scaling.py [--selector coreset] [--epochs 1] [--rounds 2]

Not a test.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from train_server import machine_lines, throughput_dataset

from batchcraft.batcher.plan_rows import read_selections


def plan_seconds(dataset: Path, out: Path, selector: str, epochs: int, executors: int) -> float:
    """Wall-clock seconds of one ``batchcraft plan`` run, JVM start included."""
    command = [sys.executable, "-m", "batchcraft", "plan", str(dataset), "--selector", selector,
               "--batch-size", "256", "--epochs", str(epochs), "--out", str(out),
               "--master", f"local-cluster[{executors},1,2048]"]  # fmt: skip
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])
    return time.perf_counter() - started


def same_plans(first: Path, second: Path) -> bool:
    one, two = read_selections(first), read_selections(second)
    return one.keys() == two.keys() and all(
        np.array_equal(one[p].positions, two[p].positions) for p in one
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--selector", default="coreset", help="(default: coreset)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs planned (default: 1)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (default: 2)")
    args = parser.parse_args(argv)
    for line in machine_lines():
        print(line, flush=True)
    times: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        dataset = throughput_dataset(work / "throughput")
        plans = []
        for round_ in range(args.rounds):
            for executors in (1, 2):
                out = work / f"plan-{executors}-{round_}"
                seconds = plan_seconds(dataset, out, args.selector, args.epochs, executors)
                times[executors].append(seconds)
                plans.append(out)
                print(f"  {executors} executor(s): {seconds:6.1f} s", flush=True)
        equal = all(same_plans(plans[0], other) for other in plans[1:])
    one, two = statistics.median(times[1]), statistics.median(times[2])
    print("\n| selector | epochs | 1 executor | 2 executors | speed-up | plans equal |")
    print("|---|---|---|---|---|---|")
    print(f"| {args.selector} | {args.epochs} | {one:.1f} s | {two:.1f} s | {one / two:.2f}× "
          f"| {'yes' if equal else 'NO'} |")  # fmt: skip
    return 0 if equal else 1


if __name__ == "__main__":
    raise SystemExit(main())
