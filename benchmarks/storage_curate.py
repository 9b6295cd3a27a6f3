"""Curation from an object store against curation from a local disk, measured in one run.

    python benchmarks/storage_curate.py                 # 10,000 documents, gzipped JSONL
    python benchmarks/storage_curate.py --rows 2000 --rounds 1   # a smoke run

The same synthetic corpus, as ``.jsonl.gz`` files, is curated (real model, one shared
local SparkSession) from a local directory into a local directory, and from a local
S3-compatible server (moto's ``moto_server``, in its own process on loopback) into that
server. A small warm-up run first loads the model into every Python worker. Rounds
alternate the order. The figure is the median time ratio S3 / local (goal ≤ 1.2×).

What it does not measure: a real object store's latency and bandwidth (moto keeps objects
in memory on the same machine), and a cluster's executors reading in parallel.
"""

from __future__ import annotations

import argparse
import gzip
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from train_server import machine_lines

from batchcraft.curation import curate
from batchcraft.storage import resolve, write_bytes
from batchcraft.synth import generate_corpus

GOAL = 1.2


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_moto(port: int) -> subprocess.Popen[bytes]:
    """``moto_server`` on 127.0.0.1:``port``, once it answers."""
    command = [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
            return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("moto_server did not start")


def gzipped_corpus(rows: int, local: Path, bucket: str | None, seed: int) -> None:
    """The synthetic corpus as .jsonl.gz files in ``local`` (and in ``bucket`` when given)."""
    with tempfile.TemporaryDirectory() as workdir:
        generate_corpus(workdir, num_rows=rows, seed=seed, bad_rows=False)
        local.mkdir(parents=True)
        for path in sorted(Path(workdir, "corpus").glob("*.jsonl")):
            packed = gzip.compress(path.read_bytes())
            (local / f"{path.name}.gz").write_bytes(packed)
            if bucket:
                write_bytes(resolve(f"s3://{bucket}/corpus/{path.name}.gz"), packed)


def timed_curate(spark: Any, inputs: str, out: str, options: dict[str, Any]) -> float:
    start = time.perf_counter()
    curate(inputs, out, spark=spark, id_column="id", write_report=False, overwrite=True,
           storage_options=options)  # fmt: skip
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000, help="documents (default: %(default)s)")
    parser.add_argument(
        "--rounds", type=int, default=2, help="alternating rounds (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    for line in machine_lines():
        print(line, flush=True)
    os.environ["HF_HUB_OFFLINE"] = "1"
    port = free_port()
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                      AWS_DEFAULT_REGION="us-east-1", AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}")  # fmt: skip
    server = start_moto(port)
    from batchcraft.pipeline.spark import spark_session

    spark = spark_session("local[*]")
    try:
        import boto3

        boto3.client("s3").create_bucket(Bucket="bench")
        work = Path(tempfile.mkdtemp(prefix="storage-bench-"))
        gzipped_corpus(args.rows, work / "corpus", "bench", seed=1)
        gzipped_corpus(200, work / "warm", None, seed=2)
        timed_curate(spark, str(work / "warm"), str(work / "warm-out"), {})
        runs: dict[str, list[float]] = {"local": [], "s3": []}
        for round_ in range(args.rounds):
            order = ["local", "s3"] if round_ % 2 == 0 else ["s3", "local"]
            for where in order:
                if where == "local":
                    seconds = timed_curate(spark, str(work / "corpus"), str(work / "out"), {})
                else:
                    seconds = timed_curate(spark, "s3://bench/corpus/", "s3://bench/out", {})
                runs[where].append(seconds)
                print(f"  round {round_ + 1}: {where:5s} {seconds:6.1f} s", flush=True)
    finally:
        spark.stop()
        server.terminate()
    local, s3 = statistics.median(runs["local"]), statistics.median(runs["s3"])
    print(f"\n{args.rows:,} gzipped JSONL documents, curate (real model) -> dataset")
    print("| from → to | median seconds | ratio |")
    print("|---|---|---|")
    print(f"| local disk → local disk | {local:.1f} | 1.00× |")
    print(f"| S3 (moto on loopback) → S3 | {s3:.1f} | {s3 / local:.2f}× (goal ≤ {GOAL}×) |")
    return 0 if s3 / local <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
