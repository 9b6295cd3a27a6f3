"""Selection-quality benchmark: does each selector deliver its paper's effect, at CPU scale?

Every row of the table is measured in one run, side by side with its baseline,
on synthetic data made here (described next to each experiment).

    python benchmarks/selection_quality.py --out selection_quality.json [--quick]

Prints a markdown table; writes the same rows plus latencies as JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from machine import machine_lines
from quality_concept import concept_rows, zipf_concepts
from quality_coreset import coreset_rows, logistic_regression_pool
from quality_hard_negative import hard_negative_rows
from quality_jest import jest_rows, planted_block_rows
from quality_rows import Row, timed_ms, unit

from batchcraft.selectors import Pool, get_selector


def latency_rows(rng: np.random.Generator, repeats: int) -> list[Row]:
    """Median latency per selection; the baseline column is the same call's CPU time."""
    towers = {
        name: unit(rng.normal(size=(2560, 64))).astype(np.float32)
        for name in (
            "embeddings",
            "pair_embeddings",
            "learner_embeddings",
            "learner_pair_embeddings",
        )
    }
    _, gradients = logistic_regression_pool(rng, 1280)
    concept_pool = Pool(concepts=zipf_concepts(rng, 5120))
    cases = [
        ("jest", get_selector("jest"), Pool(**towers), 512, 50.0, "64-d towers"),
        ("coreset", get_selector("coreset"), Pool(embeddings=towers["embeddings"][:1280]), 128, 30.0,
         "64-d embeddings"),
        ("coreset", get_selector("coreset"), Pool(gradient_sketches=gradients), 128, 30.0,
         "240-d gradient sketches"),
        ("concept DM", get_selector("concept"), concept_pool, 1024, 20.0, "concept lists"),
        ("concept FM", get_selector("concept", variant="frequency"), concept_pool, 1024, 20.0,
         "concept lists"),
    ]  # fmt: skip
    rows = []
    for name, selector, pool, batch_size, budget, data in cases:
        wall, cpu = timed_ms(lambda s=selector, p=pool, b=batch_size: s.select(p, b, rng), repeats)
        metric = f"latency {len(pool)}→{batch_size} ({data}), ms wall (median)"
        rows.append(Row(name, metric, wall, "CPU ms of the same calls", cpu, f"≤ {budget:.0f} ms",
                        wall <= budget))  # fmt: skip
    return rows


def markdown(rows: list[Row]) -> str:
    lines = [
        "| selector | metric | value | baseline | baseline value | goal | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.selector} | {row.metric} | {row.value:.4g} | {row.baseline} | "
            f"{row.baseline_value:.4g} | {row.goal} | {'yes' if row.passed else 'NO'} |"
        )
    return "\n".join(lines)


def main() -> None:
    for line in machine_lines():  # figures mean little without the machine they ran on
        print(line, flush=True)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON results")
    parser.add_argument("--quick", action="store_true", help="fewer trials and steps (smoke run)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch intra-op threads (default 1: on shared 2-core machines more threads spin-wait)",
    )
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.torch_threads)
    rng = np.random.default_rng(arguments.seed)
    trials = 3 if arguments.quick else 20
    started = time.perf_counter()
    rows: list[Row] = []
    extra: dict[str, Any] = {}
    for part in (  # latency first: long training runs leave the process slower to measure
        lambda: (latency_rows(rng, 5 if arguments.quick else 30), {}),
        lambda: coreset_rows(rng, trials),
        lambda: (concept_rows(rng, max(2, trials // 5)), {}),
        lambda: hard_negative_rows(rng, 4096 if arguments.quick else 20000),
        lambda: jest_rows(1 if arguments.quick else 3, 150 if arguments.quick else 600),
        lambda: (planted_block_rows(rng, 2 if arguments.quick else 5), {}),
    ):
        part_rows, part_extra = part()
        torch.set_num_threads(arguments.torch_threads)  # importing apricot (numba) resets it
        rows.extend(part_rows)
        extra.update(part_extra)
    table = markdown(rows)
    load = os.getloadavg()
    print(table)
    print(f"\nload average during the run: {load[0]:.2f} (1 min), on {os.cpu_count()} CPUs")
    extra.update(load_average=list(load), torch_threads=arguments.torch_threads, machine=platform.machine(),
                 python=platform.python_version(), seconds=time.perf_counter() - started)  # fmt: skip
    arguments.out.write_text(
        json.dumps({"rows": [asdict(row) for row in rows], **extra}, indent=2, default=float)
    )


if __name__ == "__main__":
    main()
