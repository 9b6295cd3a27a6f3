"""Training through the service: do the selectors make a real trainer reach its target sooner?

`batchcraft serve` runs in its own process (``python -m batchcraft.service.cli``,
with ``--metrics-port`` for its Prometheus ``/metrics``); this process trains
torch models on the batches it sends, through `BatchClient` or the torch
`BatchDataset`, and reports feedback as a user's training loop would. Every
task writes its synthetic data as a curated dataset first (one server serves
them all, see ``train_server.py``); the tasks are described in ``train_tasks.py``
(label noise), ``train_coreset_task.py``, ``train_concept_task.py``,
``train_pair_tasks.py`` (noisy pairs) and ``train_hard_negative_task.py``; the rows
and the table are made in ``train_results.py``:

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
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from train_concept_task import ConceptTask
from train_coreset_task import CoresetTask
from train_hard_negative_task import HardNegativeTask
from train_loop import Variant
from train_pair_tasks import NoisyPairsTask
from train_results import Row, Run, compare, markdown
from train_server import ServerProcess, machine_lines, throughput_dataset, throughput_row
from train_tasks import LabelNoiseTask

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
WARM_UP_STEPS = 20


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
