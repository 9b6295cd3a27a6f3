"""Training through the service: do the selectors make a real trainer reach its target sooner?

`batchcraft serve` runs in its own process (``python -m batchcraft.service.cli``,
with ``--metrics-port`` for its Prometheus ``/metrics``); this process trains
torch models on the batches it sends, through `BatchClient` or the torch
`BatchDataset`, and reports feedback as a user's training loop would. Every
task writes its synthetic data as a curated dataset first (one server serves
them all, see ``train_server.py``); the tasks are described in ``train_tasks.py`` and
``train_pair_tasks.py``:

* ``label_noise``: ``jest`` / ``jest_independent`` with per-example losses
  (async) against uniform; 30% flipped labels, ``ref_loss`` from a reference
  model trained on clean data; ``jest (sync)`` (every super-batch scored on the
  current model) as a reference without estimates.
* ``label_noise_2k``: the same on 2,000 training rows, so that uniform needs several
  passes and an async trainer's reports give most candidates a loss of their own.
* ``noisy_pairs``: pairwise ``jest``, sync and async, on 60% mismatched pairs
  with a two-tower SigLIP model.
* ``coreset`` (CREST, sync gradient proxies), ``concept`` (CABS-DM),
  ``hard_negative`` (NGAME): the tasks of selection_quality.py, now trained.
* ``throughput``: batches/s of ``jest`` at 512 KiB with a client that reports a
  loss for every row it receives (no training), against uniform in the same run.

Per run: steps and **wall-clock to the target** (the clock runs from the start
of training, while batches are awaited, selected and sent; it stops during the
held-out evaluations, every 5 or 10 steps, during which an async server may
select up to ``max_in_flight`` batches ahead), batches/s while training, and
the selector's share of the server's CPU: ``batchcraft_selection_seconds_sum``
from /metrics (wall seconds inside the selector, lock waits included, so it can
pass 100% when threads contend) over the server process's CPU seconds from
psutil. The target is set as in selection_quality.py: 95% of the final metric
uniform reaches (the median over seeds of the mean of its last three
evaluations), so every selector is measured against the same bar; figures are
medians over seeds and ratios against uniform in the same run. The notes under
the table add the steps to 100% of uniform's final metric and what each task
records about the batches it was served.

The server runs with ``OMP_NUM_THREADS=1`` (``--server-threads``): JEST scores
with torch, whose default of one thread per core makes each selection spin on
the trainer's core of a 2-core machine (async pairwise JEST: 84 batches/s with
torch's default, 145 with one thread). Before the measured runs, each variant
trains 20 unmeasured steps: a server imports torch on its first JEST selection
(about 2 s), once per process, which a long-running server has long paid.

    python benchmarks/train_through_service.py --out train.json [--quick] [--tasks label_noise,coreset]

``--quick``: one seed and few steps (a smoke run). Not a test: the figures
depend on the machine; the script prints its CPU, load and versions first.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from train_loop import Curve, Variant
from train_pair_tasks import HardNegativeTask, NoisyPairsTask
from train_server import ServerProcess, machine_lines, throughput_dataset, throughput_row
from train_tasks import ConceptTask, CoresetTask, LabelNoiseTask

TASKS: dict[str, Any] = {
    task.name: task
    for task in (
        LabelNoiseTask(),
        LabelNoiseTask(rows=2000),
        NoisyPairsTask(),
        CoresetTask(),
        ConceptTask(),
        HardNegativeTask(),
    )
}
STEPS = {
    "label_noise": 600,
    "label_noise_2k": 600,
    "noisy_pairs": 600,
    "coreset": 300,
    "concept": 400,
    "hard_negative": 600,
}
QUICK_STEPS = {
    "label_noise": 150,
    "label_noise_2k": 150,
    "noisy_pairs": 150,
    "coreset": 100,
    "concept": 100,
    "hard_negative": 80,
}
TARGET_SHARE = 0.95
MET = {True: "yes", False: "NO", None: "—"}
WARM_UP_STEPS = 20


@dataclass(frozen=True)
class Goal:
    """What a variant must show against uniform: step and wall-clock ratios, or a higher
    metric at equal steps."""

    text: str
    steps_ratio: float | None = None
    wall_ratio: float | None = None
    equal_steps: bool = False


GOALS = {
    ("label_noise", "jest"): Goal("steps ≤ 0.6×, wall-clock ≤ 0.7×", 0.6, 0.7),
    ("label_noise", "jest_independent"): Goal("fewer steps than uniform", 1.0),
    ("label_noise", "jest (sync)"): Goal("none (reference: fresh losses, no estimates)"),
    ("label_noise", "jest (ahead, T=0.3)"): Goal("steps ≤ 0.6×, wall-clock ≤ 0.7×", 0.6, 0.7),
    ("label_noise_2k", "jest"): Goal("steps ≤ 0.6×, wall-clock ≤ 0.7×", 0.6, 0.7),
    ("label_noise_2k", "jest (T=0.3)"): Goal("steps ≤ 0.6×, wall-clock ≤ 0.7×", 0.6, 0.7),
    ("label_noise_2k", "jest_independent"): Goal("fewer steps than uniform", 1.0),
    ("noisy_pairs", "jest (sync)"): Goal("steps ≤ 0.5×, wall-clock ≤ 0.6×", 0.5, 0.6),
    ("noisy_pairs", "jest (async)"): Goal("steps ≤ 0.5×, wall-clock ≤ 0.6×", 0.5, 0.6),
    ("coreset", "coreset"): Goal("fewer steps than uniform", 1.0),
    ("concept", "concept"): Goal("higher long-tail accuracy at equal steps", equal_steps=True),
    ("hard_negative", "hard_negative"): Goal("higher recall@10 at equal steps", equal_steps=True),
}


# ----------------------------------------------------------------------------- measuring


@dataclass
class Run:
    """One training run of one variant on one seed, with the server's costs during it."""

    task: str
    variant: str
    seed: int
    curve: Curve
    server: dict[str, float]  # differences of `ServerProcess.snapshot` over the run

    @property
    def batches_per_second(self) -> float:
        return self.curve.batches / self.curve.train_seconds

    @property
    def selection_share(self) -> float:
        cpu = self.server["cpu_seconds"]
        return self.server["selection_seconds"] / cpu if cpu > 0 else float("nan")


def train_once(server: ServerProcess, task: Any, variant: Variant, data: Any, dataset: str,
               steps: int, seed: int) -> Run:  # fmt: skip
    before = server.snapshot(dataset, variant.selector)
    curve = task.train(server.address, dataset, variant, data, steps, seed)
    after = server.snapshot(dataset, variant.selector)
    spent = {key: after[key] - before[key] for key in after}
    run = Run(task.name, variant.label, seed, curve, spent)
    print(
        f"  {task.name:13s} {variant.label:17s} seed {seed}: final {curve.final():.4f}, "
        f"{run.batches_per_second:6.1f} batches/s, selection {run.selection_share:.0%} of "
        f"server CPU, served by {curve.served_by}",
        flush=True,
    )
    return run


@dataclass
class Row:
    """One variant of one task against uniform, medians over seeds."""

    task: str
    selector: str
    metric: str
    target: float
    steps: float
    uniform_steps: float
    seconds: float
    uniform_seconds: float
    final: float
    uniform_final: float
    batches_per_second: float
    uniform_batches_per_second: float
    selection_share: float
    goal: str
    met: bool | None
    diagnostics: dict[str, float]
    uniform_diagnostics: dict[str, float]
    steps_to_uniform_final: tuple[float, float] = (float("nan"), float("nan"))

    @property
    def steps_ratio(self) -> float:
        return self.steps / self.uniform_steps

    @property
    def wall_ratio(self) -> float:
        return self.seconds / self.uniform_seconds


def to_target(curve: Curve, target: float) -> tuple[float, float]:
    """Steps and training seconds until the first evaluation at or above ``target``."""
    index = curve.first_reaching(target)
    if index is None:
        return float("inf"), float("inf")
    return float(curve.steps[index]), curve.seconds[index]


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def compare(task: Any, variant: str, runs: list[Run]) -> Row:
    """The row of ``variant`` against uniform on ``task`` (runs of every variant and seed)."""
    mine = [run for run in runs if run.variant == variant]
    uniform = [run for run in runs if run.variant == "uniform"]
    target = TARGET_SHARE * median([run.curve.final() for run in uniform])
    reached = [to_target(run.curve, target) for run in mine]
    uniform_reached = [to_target(run.curve, target) for run in uniform]
    goal = GOALS.get((task.name, variant), Goal("none set"))
    row = Row(
        task.name, variant, task.metric, target,
        median([steps for steps, _ in reached]), median([steps for steps, _ in uniform_reached]),
        median([seconds for _, seconds in reached]),
        median([seconds for _, seconds in uniform_reached]),
        median([run.curve.final() for run in mine]), median([run.curve.final() for run in uniform]),
        median([run.batches_per_second for run in mine]),
        median([run.batches_per_second for run in uniform]),
        median([run.selection_share for run in mine]), goal.text, False,
        diagnostics(mine), diagnostics(uniform),
    )  # fmt: skip
    row.met = goal_met(goal, row)
    uniform_final = median([run.curve.final() for run in uniform])
    row.steps_to_uniform_final = (
        median([to_target(run.curve, uniform_final)[0] for run in mine]),
        median([to_target(run.curve, uniform_final)[0] for run in uniform]),
    )
    return row


def diagnostics(runs: list[Run]) -> dict[str, float]:
    """Each diagnostic's run mean, median over the runs."""
    names = sorted({name for run in runs for name in run.curve.diagnostics})
    return {
        name: median([float(np.mean(run.curve.diagnostics[name])) for run in runs])
        for name in names
    }


def goal_met(goal: Goal, row: Row) -> bool | None:
    if goal.steps_ratio is None and goal.wall_ratio is None and not goal.equal_steps:
        return None
    if goal.equal_steps:
        return row.final > row.uniform_final
    steps_ok = goal.steps_ratio is None or (
        row.steps_ratio <= goal.steps_ratio and row.steps < row.uniform_steps
    )
    wall_ok = goal.wall_ratio is None or row.wall_ratio <= goal.wall_ratio
    return bool(steps_ok and wall_ok)


# ----------------------------------------------------------------------------- report


def fmt(value: float, digits: int = 0) -> str:
    return "never" if value == float("inf") else f"{value:,.{digits}f}"


def markdown(rows: list[Row], throughput: dict[str, Any] | None, seeds: int) -> str:
    lines = [
        "| selector | task (metric, target) | steps to target vs uniform | wall-clock to "
        "target vs uniform, s | ratio steps / wall | final metric vs uniform | batches/s "
        "vs uniform | selection share of server CPU | goal | met |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.selector} | {row.task} ({row.metric} ≥ {row.target:.3f}) | "
            f"{fmt(row.steps)} vs {fmt(row.uniform_steps)} | {fmt(row.seconds, 1)} vs "
            f"{fmt(row.uniform_seconds, 1)} | {row.steps_ratio:.2f}× / {row.wall_ratio:.2f}× | "
            f"{row.final:.3f} vs {row.uniform_final:.3f} | {row.batches_per_second:,.0f} vs "
            f"{row.uniform_batches_per_second:,.0f} | {row.selection_share:.0%} | {row.goal} | "
            f"{MET[row.met]} |"
        )
    if throughput is not None:
        lines.append(
            f"| jest (per-example losses reported for every batch) | throughput, 512 KiB "
            f"batches, no training | | | | | {throughput['jest_batches_per_second']:,.0f} vs "
            f"{throughput['uniform_batches_per_second']:,.0f} | "
            f"{throughput['selection_share']:.0%} | {throughput['goal']} | "
            f"{'yes' if throughput['met'] else 'NO'} |"
        )
    lines.append(f"\nMedians of {seeds} seed(s); wall-clock excludes the held-out evaluations.")
    for row in rows:
        mine, theirs = row.steps_to_uniform_final
        lines.append(
            f"- {row.selector} on {row.task}: steps to uniform's final {row.metric} "
            f"({row.uniform_final:.3f}): {fmt(mine)} vs {fmt(theirs)}"
        )
        for name, value in row.diagnostics.items():
            lines.append(
                f"- {row.selector} on {row.task}: {name} of the trained batches {value:.3f} "
                f"(uniform {row.uniform_diagnostics.get(name, float('nan')):.3f})"
            )
    return "\n".join(lines)


def prepare(tasks: list[str], seeds: int, work: Path) -> tuple[dict[str, Path], dict]:
    """Write every task's dataset for every seed; returns the paths and held-out data."""
    paths, data = {}, {}
    for name in tasks:
        for seed in range(seeds):
            dataset = f"{name}-{seed}"
            started = time.perf_counter()
            data[dataset] = TASKS[name].prepare(work / dataset, seed)
            paths[dataset] = work / dataset
            print(f"  wrote {dataset} in {time.perf_counter() - started:.1f} s", flush=True)
    return paths, data


def warm_up(server: ServerProcess, task: Any, data: Any, dataset: str) -> None:
    """A few unmeasured steps of every variant: the server imports what a selector needs
    (torch, for JEST's scoring: about 2 s) on its first selection, once per process, and a
    long-running server has paid that before any training run starts."""
    for variant in task.variants:
        task.train(server.address, dataset, variant, data, WARM_UP_STEPS, seed=99)


def run_tasks(server: ServerProcess, tasks: list[str], seeds: int, data: dict,
              steps: dict[str, int]) -> tuple[list[Row], list[Run]]:  # fmt: skip
    """Train every variant of every task on every seed (variants alternate per seed)."""
    rows, runs = [], []
    for name in tasks:
        task, task_runs = TASKS[name], []
        warm_up(server, task, data[f"{name}-0"], f"{name}-0")
        for seed in range(seeds):
            dataset = f"{name}-{seed}"
            for variant in task.variants:
                task_runs.append(
                    train_once(server, task, variant, data[dataset], dataset, steps[name], seed)
                )
        rows += [compare(task, variant.label, task_runs) for variant in task.variants[1:]]
        runs += task_runs
    return rows, runs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON results")
    parser.add_argument("--quick", action="store_true", help="one seed, few steps (smoke run)")
    parser.add_argument(
        "--tasks",
        default=",".join([*TASKS, "throughput"]),
        help="comma-separated tasks (default: all): " + ", ".join([*TASKS, "throughput"]),
    )
    parser.add_argument(
        "--server-threads",
        type=int,
        default=1,
        help="OMP_NUM_THREADS of the server process, 0 for torch's default (one per core): "
        "JEST scores with torch, whose second thread takes the trainer's core (default: 1)",
    )
    arguments = parser.parse_args(argv)
    torch.set_num_threads(1)  # 2-core machine: the server process uses the other core
    names = [name for name in arguments.tasks.split(",") if name]
    unknown = sorted(set(names) - {*TASKS, "throughput"})
    if unknown:
        parser.error(f"unknown tasks {unknown}; valid: {[*TASKS, 'throughput']}")
    seeds = 1 if arguments.quick else 3
    steps = QUICK_STEPS if arguments.quick else STEPS
    for line in machine_lines():
        print(line)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="train-through-service-") as directory:
        work = Path(directory)
        trained = [name for name in names if name in TASKS]
        paths, data = prepare(trained, seeds, work)
        if "throughput" in names:
            paths["throughput"] = throughput_dataset(work / "throughput")
        server = ServerProcess(paths, work, arguments.server_threads)
        try:
            rows, runs = run_tasks(server, trained, seeds, data, steps)
            throughput = (
                throughput_row(server, 1 if arguments.quick else 3, 2.0 if arguments.quick else 4.0)
                if "throughput" in names
                else None
            )
        finally:
            server.stop()
    print()
    for line in machine_lines():
        print(line)
    print(markdown(rows, throughput, seeds))
    result = {
        "machine": machine_lines(),
        "rows": [{**asdict(row), "steps_ratio": row.steps_ratio, "wall_ratio": row.wall_ratio}
                 for row in rows],
        "throughput": throughput,
        "runs": [{"task": run.task, "variant": run.variant, "seed": run.seed,
                  "curve": asdict(run.curve), "server": run.server} for run in runs],
        "seconds": time.perf_counter() - started,
    }  # fmt: skip
    arguments.out.write_text(json.dumps(result, indent=2, default=float))


if __name__ == "__main__":
    main()
