"""Incremental curation (``curate NEW --against PREV``) against curating everything again.

    python benchmarks/incremental_curate.py                 # 10,000 documents, 10 % new
    python benchmarks/incremental_curate.py --rows 1500     # a smoke run

About 4 minutes on 2 idle cores (PREV's own curation included); much longer under load.

The synthetic corpus (its injected duplicates included) is split by a hash of each id:
``--new-fraction`` of the documents are the new week, the rest PREV. PREV is curated
first (untimed: it exists already in the use case); then, in one shared local
SparkSession with the real model, the new documents are curated against PREV and all
documents are curated together again, in alternating order per round. A small warm-up
run first loads the model into every Python worker. The figure is the median time ratio
incremental / everything again (goal ≤ 0.25×).

What it does not measure: a PREV on an object store (its rows are read by the executors
as local ones are), and PREVs much larger than the new rows' embed time (PREV's kept
texts are shingled and its vectors compared in every incremental run).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from machine import machine_lines

from batchcraft.pipeline import curate
from batchcraft.synth import generate_corpus
from batchcraft.synth.news import write_news_corpus

GOAL = 0.25
SETTINGS: dict[str, Any] = {"id_column": "id", "write_report": False, "overwrite": True}


def split_corpus(
    rows: int, work: Path, new_fraction: float, seed: int, kind: str = "synthetic"
) -> tuple[Path, Path]:
    """The synthetic corpus (``kind`` "news": news-length articles, `synth.news`) split
    into ``work/prev`` and ``work/new`` by a hash of each id."""
    with tempfile.TemporaryDirectory() as generated:
        if kind == "news":
            files = write_news_corpus(generated, rows, seed=seed)
        else:
            generate_corpus(generated, num_rows=rows, seed=seed, bad_rows=False)
            files = sorted(Path(generated, "corpus").glob("*.jsonl"))
        parts: dict[str, list[str]] = {"prev": [], "new": []}
        for path in files:
            for line in path.read_text().splitlines():
                digest = hashlib.sha256(json.loads(line)["id"].encode()).digest()
                is_new = digest[0] / 256 < new_fraction
                parts["new" if is_new else "prev"].append(line)
    for name, lines in parts.items():
        (work / name).mkdir(parents=True)
        (work / name / f"{name}.jsonl").write_text("\n".join(lines) + "\n")
    return work / "prev", work / "new"


def timed(spark: Any, inputs: list[str], out: Path, **params: Any) -> tuple[float, dict[str, Any]]:
    start = time.perf_counter()
    manifest = curate(inputs, str(out), spark=spark, **SETTINGS, **params)
    return time.perf_counter() - start, manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000, help="documents (default: %(default)s)")
    parser.add_argument("--new-fraction", type=float, default=0.1, help="(default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds (default: %(default)s)")
    parser.add_argument(
        "--corpus",
        choices=["synthetic", "news"],
        default="synthetic",
        help="short synthetic sentences, or news-length articles of 40-120 words, where "
        "the encoder's share of a run is a real corpus's (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    for line in machine_lines():
        print(line, flush=True)
    os.environ["HF_HUB_OFFLINE"] = "1"
    from batchcraft.pipeline.spark import spark_session

    work = Path(tempfile.mkdtemp(prefix="incremental-bench-"))
    prev, new = split_corpus(args.rows, work / "corpus", args.new_fraction, 1, args.corpus)
    warm, _ = split_corpus(200, work / "warm", 0.0, seed=2)
    spark = spark_session("local[*]")
    runs: dict[str, list[float]] = {"again": [], "incremental": []}
    stages: dict[str, list[dict[str, float]]] = {"again": [], "incremental": []}
    try:
        timed(spark, [str(warm)], work / "warm-out")
        seconds, prev_manifest = timed(spark, [str(prev)], work / "PREV")
        print(f"  PREV: {prev_manifest['num_rows']:,} rows curated in {seconds:.1f} s", flush=True)
        for round_ in range(args.rounds):
            order = ["incremental", "again"] if round_ % 2 == 0 else ["again", "incremental"]
            for kind in order:
                if kind == "incremental":
                    seconds, manifest = timed(
                        spark, [str(new)], work / "delta", against=[str(work / "PREV")]
                    )
                    removed = manifest["incremental"]["removed_against_previous"]
                else:
                    seconds, manifest = timed(spark, [str(prev), str(new)], work / "all")
                runs[kind].append(seconds)
                stages[kind].append(manifest["timings"])
                print(f"  round {round_ + 1}: {kind:11s} {seconds:6.1f} s", flush=True)
    finally:
        spark.stop()
    again, incremental = statistics.median(runs["again"]), statistics.median(runs["incremental"])
    new_rows = sum(1 for _ in (new / "new.jsonl").open())
    print(f"\n{args.rows:,} {args.corpus} documents, {new_rows:,} new "
          f"({args.new_fraction:.0%}), real model")  # fmt: skip
    print(f"removed against PREV: {removed}")
    print("| run | median seconds | ratio |")
    print("|---|---|---|")
    print(f"| everything again ({args.rows:,} documents) | {again:.1f} | 1.00× |")
    ratio = incremental / again
    print(f"| new against PREV ({new_rows:,} documents) | {incremental:.1f} | {ratio:.2f}× "
          f"(goal ≤ {GOAL}×) |")  # fmt: skip
    print_stages(stages)
    return 0 if ratio <= GOAL else 1


def print_stages(stages: dict[str, list[dict[str, float]]]) -> None:
    """Median seconds per stage of both kinds of run: where an incremental run's time goes."""
    names = list(dict.fromkeys(name for kind in stages.values() for run in kind for name in run))
    print("\n| stage | everything again (s) | new against PREV (s) |")
    print("|---|---|---|")
    for name in names:
        cells = [
            statistics.median(run.get(name, 0.0) for run in stages[kind])
            for kind in ("again", "incremental")
        ]
        print(f"| {name} | {cells[0]:.1f} | {cells[1]:.1f} |")


if __name__ == "__main__":
    sys.exit(main())
