"""Whole runs on news-length documents: time per stage and the driver's memory over the run.

    python benchmarks/end_to_end.py curate --docs 20000       # the whole curate job, real model
    python benchmarks/end_to_end.py dedup --docs 1000000      # read -> exact -> MinHash only

The corpus is `batchcraft.synth.news.write_news_corpus` (JSONL of 40-120-word articles, 5%
copies of recent articles: half exact, half with a word dropped). The job runs in a fresh
interpreter (the Spark driver) whose RSS this process samples every second, with the
driver JVM's: "flat" means the Python driver's RSS at the end of the run is where it was
once Spark had started, whatever the number of documents.

``dedup`` runs the job's own read, exact-dedup and MinHash steps (the functions
`curation_job` strings together) and counts the rows left to embed: text through the
stages that see every document, without the encoder.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from machine import machine_lines

from batchcraft.synth.news import write_news_corpus

SAMPLE_SECONDS = 1.0


def run_dedup_stages(corpus: str, out: str, master: str) -> dict[str, Any]:
    """read -> exact dedup -> MinHash dedup of ``corpus`` (in this process, the driver)."""
    from batchcraft.pipeline.config import CurateConfig
    from batchcraft.pipeline.dedup.stage import exact_dedup_step
    from batchcraft.pipeline.frames import PersistedFrames
    from batchcraft.pipeline.minhash.stage import minhash_dedup_step
    from batchcraft.pipeline.progress import StageClock
    from batchcraft.pipeline.read.column_plan import observe_inputs, plan_columns
    from batchcraft.pipeline.read.discovery import discover
    from batchcraft.pipeline.read.stage import read_step
    from batchcraft.pipeline.spark import spark_session

    config = CurateConfig(inputs=(corpus,), out=out, id_column="id", master=master)
    files = discover(config.inputs, config.source, config.storage_options)
    columns = plan_columns(observe_inputs(files), config)  # id and text: no survey needed
    spark = spark_session(config.master, config.spark_conf)
    frames = PersistedFrames(spark)
    clock = StageClock(3)
    with clock.stage("read+validate") as counts:
        raw, _parsed = read_step(spark, config, files, columns, frames, counts)
    with clock.stage("exact_dedup") as counts:
        unique = exact_dedup_step(raw, frames, counts)
    with clock.stage("minhash_dedup") as counts:
        near = minhash_dedup_step(config, unique, frames, counts)
    result = {"timings": clock.timings, "unique": unique.num_rows, "to_embed": near.num_rows}
    frames.close()
    spark.stop()
    return result


def run_curate(corpus: str, out: str, master: str) -> dict[str, Any]:
    from batchcraft.pipeline import curate

    manifest = curate(corpus, out, id_column="id", master=master)
    return {"timings": manifest["timings"], "counts": manifest["counts"]["total"]}


def child(mode: str, corpus: str, out: str, master: str) -> None:
    start = time.perf_counter()
    result = (run_curate if mode == "curate" else run_dedup_stages)(corpus, out, master)
    result["job_s"] = round(time.perf_counter() - start, 1)
    status = Path("/proc/self/status").read_text().splitlines()
    peak = next(line.split()[1] for line in status if line.startswith("VmHWM"))
    result["driver_peak_rss_mb"] = round(int(peak) / 1024, 1)
    print("RESULT " + json.dumps(result), flush=True)


def sample_memory(process: subprocess.Popen[str]) -> list[tuple[float, float, float]]:
    """(seconds, Python driver RSS MB, driver JVM RSS MB) every `SAMPLE_SECONDS` to the end."""
    driver, samples, start = psutil.Process(process.pid), [], time.perf_counter()
    while process.poll() is None:
        try:
            jvm = sum(c.memory_info().rss for c in driver.children() if c.name() == "java")
            samples.append((time.perf_counter() - start, driver.memory_info().rss / 2**20,
                            jvm / 2**20))  # fmt: skip
        except psutil.Error:  # the driver or its JVM just ended
            pass
        time.sleep(SAMPLE_SECONDS)
    return samples


def summarise(samples: list[tuple[float, float, float]]) -> dict[str, Any]:
    """Driver RSS at each quarter of the run (after Spark started) and its range there."""
    started = [sample for sample in samples if sample[2] > 0] or samples
    quarters = [started[min(len(started) - 1, q * len(started) // 4)] for q in (0, 1, 2, 3)]
    quarters.append(started[-1])
    python = [sample[1] for sample in started]
    return {
        "python_driver_rss_mb_at_0_25_50_75_100pct": [round(s[1]) for s in quarters],
        "python_driver_rss_mb_min_max": [round(min(python)), round(max(python))],
        "driver_jvm_rss_mb_at_0_25_50_75_100pct": [round(s[2]) for s in quarters],
        "samples": len(samples),
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        child(*sys.argv[2:6])
        return
    for line in machine_lines(("sentence_transformers",)):
        print(line, flush=True)
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("mode", choices=["curate", "dedup"])
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        start = time.perf_counter()
        write_news_corpus(Path(workdir, "corpus"), args.docs, seed=7)
        print(f"{args.docs:,} documents written in {time.perf_counter() - start:.0f} s", flush=True)
        command = [sys.executable, __file__, "_child", args.mode, str(Path(workdir, "corpus")),
                   str(Path(workdir, "out")), args.master]  # fmt: skip
        with open(Path(workdir, "stdout"), "w+") as stdout:  # a pipe could fill and block it
            process = subprocess.Popen(command, stdout=stdout, text=True)
            samples = sample_memory(process)
            stdout.seek(0)
            output = stdout.read()
        if process.returncode != 0 or "RESULT " not in output:
            raise SystemExit(f"the {args.mode} run failed")
    result = json.loads(output.split("RESULT ", 1)[1])
    result.update(mode=args.mode, docs=args.docs, docs_per_s=round(args.docs / result["job_s"], 1))
    result.update(summarise(samples))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
