"""Curation benchmarks, each measured side by side with its reference in one run.

    python benchmarks/curation.py embed     --texts 2000      # Spark embed stage vs SentenceTransformer.encode
    python benchmarks/curation.py cluster   --rows 100000     # fit + assign vs plain faiss.Kmeans
    python benchmarks/curation.py semdedup  --rows 100000     # SemDeDup (2 clusters/row) vs brute-force all pairs
    python benchmarks/curation.py memory    --sizes 10000 100000 1000000   # driver peak RSS of the whole job
    python benchmarks/curation.py all --out results.json

Figures are ratios against the reference measured in the same process, so they hold up
on a noisy machine better than absolute times.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from machine import machine_lines

from batchcraft.pipeline.cluster.kmeans import assign, train_centroids
from batchcraft.pipeline.config import default_num_clusters
from batchcraft.pipeline.dedup.semantic import cluster_edges, decide_edges
from batchcraft.synth import generate_corpus, synthetic_embeddings, write_embeddings_parquet


def corpus_texts(count: int) -> list[str]:
    with tempfile.TemporaryDirectory() as workdir:
        generate_corpus(workdir, num_rows=count, seed=1, bad_rows=False)
        texts = []
        for path in sorted(Path(workdir, "corpus").glob("*.jsonl")):
            texts += [json.loads(line)["text"] for line in path.read_text().splitlines()]
    return texts[:count]


def bench_embed(texts: int) -> dict[str, Any]:
    """Throughput of the Spark embed stage against plain fp32 ``encode`` on the same texts."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    from sentence_transformers import SentenceTransformer

    from batchcraft.pipeline import embed
    from batchcraft.pipeline.embedding.sentence_encoder import (
        EncoderSpec,
        resolve_model_path,
        resolve_precision,
    )
    from batchcraft.pipeline.spark import spark_session

    sentences = corpus_texts(texts)
    path = resolve_model_path(None)
    model = SentenceTransformer(path, device="cpu")
    model.encode(sentences[:64])
    start = time.perf_counter()
    reference = model.encode(sentences, normalize_embeddings=True)
    reference_seconds = time.perf_counter() - start

    spark = spark_session("local[*]")
    precision = resolve_precision("auto")
    spec = EncoderSpec(path, precision, 64, 1)
    frame = spark.createDataFrame(
        [(f"{i:08d}", s) for i, s in enumerate(sentences)], "id string, text string"
    )
    frame = frame.repartition(2 * spark.sparkContext.defaultParallelism, "id").persist()
    frame.count()
    embed(frame, spec).count()  # warm-up: every Python worker loads the model once
    start = time.perf_counter()
    embedded = embed(frame, spec).select("id", "embedding").toArrow()
    stage_seconds = time.perf_counter() - start
    spark.stop()
    order = np.argsort(embedded.column("id").to_pylist())
    ours = np.asarray(embedded.column("embedding").to_pylist(), dtype=np.float32)[order]
    return {
        "texts": len(sentences),
        "precision": precision,
        "reference_per_s": round(len(sentences) / reference_seconds, 1),
        "stage_per_s": round(len(sentences) / stage_seconds, 1),
        "ratio": round(reference_seconds / stage_seconds, 2),
        "min_cosine_vs_reference": round(float(np.min(np.sum(ours * reference, axis=1))), 6),
    }


def bench_cluster(rows: int) -> dict[str, Any]:
    """Fit on the bounded sample + top-2 assignment vs faiss.Kmeans trained on every row + search."""
    import faiss

    data = synthetic_embeddings(rows, seed=2).embeddings
    clusters = default_num_clusters(rows)
    start = time.perf_counter()
    kmeans = faiss.Kmeans(data.shape[1], clusters, niter=20, seed=0, spherical=True)
    kmeans.train(data)
    kmeans.index.search(data, 1)
    reference_seconds = time.perf_counter() - start
    start = time.perf_counter()
    sample = data[np.random.default_rng(0).permutation(rows)[:65_536]]
    centroids = train_centroids(sample, clusters, 20, 0)
    result = assign(data, centroids)
    ours_seconds = time.perf_counter() - start
    return {
        "rows": rows,
        "clusters": clusters,
        "faiss_kmeans_s": round(reference_seconds, 2),
        "ours_s": round(ours_seconds, 2),
        "ratio": round(reference_seconds / ours_seconds, 2),
        "mean_centroid_sim": round(float(result.centroid_sim.mean()), 4),
    }


def bench_semdedup(rows: int, eps: float = 0.08) -> dict[str, Any]:
    """Clustered SemDeDup with second-nearest clusters vs brute-force all pairs on the same vectors.

    Both sides include the chain-safe keep rule. ``speedup`` counts SemDeDup's own work
    (pairs within clusters + keep rule); ``speedup_with_kmeans`` also charges it the k-means
    fit and assignment, which the pipeline does anyway for other purposes.
    """
    synth = synthetic_embeddings(rows, seed=3)
    data, threshold = synth.embeddings, 1.0 - eps
    start = time.perf_counter()
    brute, _ = cluster_edges(data, threshold)
    decide_edges(brute.source, brute.target, brute.similarity)
    brute_seconds = time.perf_counter() - start
    start = time.perf_counter()
    clusters = default_num_clusters(rows)
    sample = data[np.random.default_rng(0).permutation(rows)[:65_536]]
    result = assign(data, train_centroids(sample, clusters, 20, 0))
    kmeans_seconds = time.perf_counter() - start
    start = time.perf_counter()
    found = _pairs_in_clusters(data, result.cluster, result.second_cluster, threshold)
    decide_edges(found[:, 0], found[:, 1], np.ones(len(found), np.float32))
    dedup_seconds = time.perf_counter() - start
    truth = set(zip(brute.source.tolist(), brute.target.tolist(), strict=True))
    ours = set(map(tuple, found.tolist()))
    primary_only = sum(1 for a, b in truth if result.cluster[a] == result.cluster[b])
    return {
        "rows": rows,
        "eps": eps,
        "clusters": clusters,
        "brute_force_pairs": len(truth),
        "brute_force_s": round(brute_seconds, 1),
        "kmeans_s": round(kmeans_seconds, 1),
        "semdedup_s": round(dedup_seconds, 1),
        "speedup": round(brute_seconds / dedup_seconds, 1),
        "speedup_with_kmeans": round(brute_seconds / (dedup_seconds + kmeans_seconds), 1),
        "recall": round(len(ours & truth) / max(1, len(truth)), 4),
        "recall_nearest_cluster_only": round(primary_only / max(1, len(truth)), 4),
    }


def _pairs_in_clusters(
    data: np.ndarray, cluster: np.ndarray, second: np.ndarray, threshold: float
) -> np.ndarray:
    """Distinct (low, high) row pairs at cosine >= threshold within each cluster group."""
    rows = np.concatenate([np.arange(len(data)), np.arange(len(data))])
    groups = np.concatenate([cluster, second])
    order = np.argsort(groups, kind="stable")
    bounds = np.flatnonzero(np.diff(groups[order])) + 1
    pairs = []
    for members in np.split(rows[order], bounds):
        edges, _ = cluster_edges(data[members], threshold)
        low, high = members[edges.source], members[edges.target]
        pairs.append(np.stack([np.minimum(low, high), np.maximum(low, high)], axis=1))
    return np.unique(np.concatenate(pairs), axis=0)


def bench_memory(sizes: list[int]) -> list[dict[str, Any]]:
    """Peak RSS of the Python driver running the whole job on precomputed embeddings.

    The job runs in a fresh interpreter that reports its own VmHWM: ``ru_maxrss`` would
    not do, as Linux carries the parent's high-water mark (here, the synthetic
    embeddings) across fork and exec into the child's.
    """
    results = []
    for size in sizes:
        with tempfile.TemporaryDirectory() as workdir:
            write_embeddings_parquet(
                synthetic_embeddings(size, seed=4),
                Path(workdir, "in"),
                num_files=max(1, size // 100_000),
            )
            script = (
                "import time\n"
                "from batchcraft.pipeline import curate\n"
                "t = time.perf_counter()\n"
                f"m = curate({str(Path(workdir, 'in'))!r}, {str(Path(workdir, 'out'))!r}, id_column='id',"
                " embedding_column='embedding', master='local[2]', write_report=False)\n"
                "peak = next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
                "print(peak, time.perf_counter() - t, m['counts']['total']['kept'])\n"
            )
            output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
            if output.returncode != 0:
                raise SystemExit(f"the {size}-row job failed:\n{output.stderr[-4000:]}")
            peak_kib, seconds, kept = output.stdout.split()[-3:]
        results.append(
            {
                "rows": size,
                "driver_peak_rss_mb": round(int(peak_kib) / 1024, 1),
                "job_s": round(float(seconds), 1),
                "kept": int(kept),
            }
        )
        print(json.dumps(results[-1]), flush=True)
    return results


def main() -> None:
    for line in machine_lines():  # figures mean little without the machine they ran on
        print(line, flush=True)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=["embed", "cluster", "semdedup", "memory", "all"])
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    if args.what in ("embed", "all"):
        results["embed"] = bench_embed(args.texts)
    if args.what in ("cluster", "all"):
        results["cluster"] = bench_cluster(args.rows)
    if args.what in ("semdedup", "all"):
        results["semdedup"] = bench_semdedup(args.rows)
    if args.what in ("memory", "all"):
        results["memory"] = bench_memory(args.sizes)
    results["max_rss_mb_of_this_process"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
    )
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
