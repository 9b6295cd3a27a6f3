"""MinHash near dedup against datatrove's MinHash pipeline, on the same documents and cores.

    python benchmarks/minhash_dedup.py --docs 20000 --pairs-per-level 500 --cores 2

The corpus: pairs planted at Jaccard 0.9, 0.8, 0.7 and 0.5 of their word 5-gram shingles
(`batchcraft.synth.near_duplicates`), the rest unrelated news-length documents of 40-120
words, in ``cores`` JSONL files. For each tool, the share of planted pairs merged at each
level (the detection at J >= 0.8; below the 0.8 threshold a merge is a false merge), the
unrelated documents it removed, and documents/s from reading the JSONL to writing the
decisions. batchcraft runs `minhash_dedup` in Spark ``local[cores]`` (session started and
warmed up before the clock); datatrove runs its four MinHash steps (signatures, buckets,
clusters, filter) with its local executor on ``cores`` workers, once with its default bands
(14 x 8) and once with batchcraft's. pip install -e '.[bench]' installs datatrove.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
from machine import machine_lines
from minhash_reference import datatrove_removed

from batchcraft.pipeline.minhash.settings import MinhashSettings
from batchcraft.synth.near_duplicates import planted_pair, random_text

LEVELS = (0.9, 0.8, 0.7, 0.5)


@dataclass(frozen=True)
class Corpus:
    """The JSONL files and what was planted in them.

    Attributes:
        folder: Where the ``part-*.jsonl`` files are.
        level_of_pair: Pair name -> its Jaccard; the pair's texts have ids NAME-a and NAME-b.
        num_docs: Documents in all.
    """

    folder: Path
    level_of_pair: dict[str, float]
    num_docs: int


def write_corpus(folder: Path, num_docs: int, pairs_per_level: int, cores: int) -> Corpus:
    """Planted pairs and unrelated documents, shuffled over ``cores`` files."""
    rng = np.random.default_rng(0)
    records, level_of_pair = [], {}
    for level in LEVELS:
        for _ in range(pairs_per_level):
            name = f"p{len(level_of_pair):06d}"
            left, right = planted_pair(rng, level, len(level_of_pair))
            records += [{"id": f"{name}-a", "text": left}, {"id": f"{name}-b", "text": right}]
            level_of_pair[name] = level
    for number in range(num_docs - len(records)):
        records.append(
            {"id": f"u{number:07d}", "text": random_text(rng, int(rng.integers(40, 121)))}
        )
    order = rng.permutation(len(records))
    folder.mkdir(parents=True)
    for part in range(cores):
        lines = (json.dumps(records[i]) + "\n" for i in order[part::cores])
        (folder / f"part-{part}.jsonl").write_text("".join(lines))
    return Corpus(folder, level_of_pair, len(records))


def figures(removed: set[str], corpus: Corpus, seconds: float) -> dict[str, Any]:
    """Share of planted pairs merged (one text removed) per level; unrelated removals."""
    merged: dict[float, list[bool]] = {level: [] for level in LEVELS}
    for name, level in corpus.level_of_pair.items():
        merged[level].append((f"{name}-a" in removed) != (f"{name}-b" in removed))
    threshold = MinhashSettings().threshold
    below = sum(sum(hits) for level, hits in merged.items() if level < threshold)
    return {
        "merged_share": {
            str(level): round(float(np.mean(hits)), 4) for level, hits in merged.items()
        },
        "pairs_merged_below_threshold": int(below),
        "unrelated_removed": sum(1 for doc in removed if doc.startswith("u")),
        "seconds": round(seconds, 2),
        "docs_per_second": round(corpus.num_docs / seconds, 1),
    }


def run_batchcraft(spark: Any, corpus: Corpus, out: Path) -> tuple[set[str], float]:
    """The removed ids and the seconds from reading the JSONL to the written decisions."""
    from batchcraft.pipeline import minhash_dedup

    start = time.perf_counter()
    frame = spark.read.schema("id string, text string").json(str(corpus.folder))
    marked = minhash_dedup(frame, keep_policy="smallest_id")
    marked.select("id", "dup_of", "dup_jaccard", "keep").write.parquet(str(out))
    seconds = time.perf_counter() - start
    table = pq.read_table(out, columns=["id", "keep"])
    removed = table.filter(pc.invert(table.column("keep"))).column("id").to_pylist()
    return set(removed), seconds


def measure(arguments: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Both tools on the same corpus; batchcraft first on a small warm-up corpus."""
    from batchcraft.pipeline.spark import spark_session

    corpus = write_corpus(
        work / "corpus", arguments.docs, arguments.pairs_per_level, arguments.cores
    )
    warmup = write_corpus(work / "warmup", 2000, 50, arguments.cores)
    spark = spark_session(f"local[{arguments.cores}]")
    try:
        run_batchcraft(spark, warmup, work / "warmup-out")
        removed, seconds = run_batchcraft(spark, corpus, work / "batchcraft-out")
    finally:
        spark.stop()
    lsh = MinhashSettings().lsh
    results = {
        f"batchcraft ({lsh.bands} x {lsh.rows}, verified)": figures(removed, corpus, seconds)
    }
    for bands, rows in ((14, 8), (lsh.bands, lsh.rows)):
        removed, seconds = datatrove_removed(
            corpus.folder, work / f"datatrove-{bands}x{rows}", bands, rows, arguments.cores
        )
        results[f"datatrove ({bands} x {rows})"] = figures(removed, corpus, seconds)
    return results


def markdown(results: dict[str, Any], num_docs: int) -> str:
    lines = [
        f"| tool ({num_docs:,} docs) | merged at J=0.9 | 0.8 | 0.7 | 0.5 | pairs merged below 0.8 | unrelated removed | docs/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, row in results.items():
        shares = " | ".join(f"{row['merged_share'][str(level)]:.3f}" for level in LEVELS)
        lines.append(
            f"| {name} | {shares} | {row['pairs_merged_below_threshold']} | "
            f"{row['unrelated_removed']} | {row['docs_per_second']:,.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--pairs-per-level", type=int, default=500)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--out", type=Path, help="also write the figures here as JSON")
    arguments = parser.parse_args()
    for line in machine_lines(("datatrove",)):
        print(line, flush=True)
    with tempfile.TemporaryDirectory(prefix="minhash-bench-") as directory:
        results = measure(arguments, Path(directory))
    reference = next(row for name, row in results.items() if name.startswith("datatrove (14"))
    for row in results.values():
        row["speed_vs_datatrove_defaults"] = round(
            row["docs_per_second"] / reference["docs_per_second"], 2
        )
    print(json.dumps(results, indent=2))
    print(markdown(results, arguments.docs))
    if arguments.out:
        arguments.out.write_text(
            json.dumps({"machine": machine_lines(("datatrove",)), "results": results}, indent=2)
        )


if __name__ == "__main__":
    main()
