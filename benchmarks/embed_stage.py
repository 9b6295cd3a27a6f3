"""The embed stage against plain ``SentenceTransformer.encode``, same texts, precision and cores.

    python benchmarks/embed_stage.py                           # 1,000 news articles, fp32 and bf16
    python benchmarks/embed_stage.py --texts 400 --precisions bf16   # a smoke run

Texts are news-length articles (40-120 words, `batchcraft.synth.news`). For each precision,
in one process and one run:

- **encode**: ``SentenceTransformer.encode(texts, batch_size=64)`` in this process, torch
  using every core (its default);
- **stage in curate**: the embed stage's own time in a `curate` run on ``local[N]`` (from
  the manifest's ``timings``; it includes the shuffle into id order, importing torch and
  sentence-transformers and loading the model once per Python worker, and caching the
  result), against the mean of an encode just before and one just after;
- **stage, warm**: `embed` on a cached frame in the same session, workers already loaded,
  in ``--rounds`` rounds each next to an encode (median of the ratios: the machine's load
  changes during a run).

The figure is docs/s of the stage over docs/s of ``encode`` at the same precision (goal
≥ 0.9×). Without AMX, bf16 matmuls run on AVX-512-BF16 or are emulated: see the machine line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from machine import machine_lines

from batchcraft.pipeline import curate, embed
from batchcraft.pipeline.embedding.sentence_encoder import EncoderSpec, resolve_model_path
from batchcraft.pipeline.spark import spark_session
from batchcraft.synth.news import news_articles

GOAL = 0.9


def plain_encoder(precision: str) -> Any:
    """``SentenceTransformer`` at ``precision`` on the CPU, warmed up."""
    import torch
    from sentence_transformers import SentenceTransformer

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[precision]
    model = SentenceTransformer(
        resolve_model_path(None), device="cpu", model_kwargs={"torch_dtype": dtype}
    )
    model.encode(["a warm-up sentence"] * 64, batch_size=64)
    return model


def encode_rate(model: Any, texts: list[str]) -> float:
    """Texts/s of plain ``SentenceTransformer.encode`` (torch on every core, its default)."""
    start = time.perf_counter()
    model.encode(texts, batch_size=64)
    return len(texts) / (time.perf_counter() - start)


def curate_embed_rate(spark: Any, corpus: Path, texts: int, precision: str) -> float:
    """Texts/s of the embed stage inside `curate` (its time in the manifest's timings)."""
    with tempfile.TemporaryDirectory() as out:
        manifest = curate(str(corpus), out, spark=spark, id_column="id", near_dedup="none",
                          precision=precision, overwrite=True)  # fmt: skip
    return texts / manifest["timings"]["embed"]


def warm_stage_rate(spark: Any, frame: Any, texts: int, precision: str) -> float:
    """Texts/s of `embed` on a cached frame, the workers' model already loaded."""
    spec = EncoderSpec(resolve_model_path(None), precision)
    start = time.perf_counter()
    embed(frame, spec).write.format("noop").mode("overwrite").save()
    return texts / (time.perf_counter() - start)


def measure(
    spark: Any, corpus: Path, texts: list[str], precision: str, rounds: int
) -> dict[str, Any]:
    """The stage in curate between two encodes, then ``rounds`` of (encode, warm stage):
    each ratio is against the encode measured next to it, and the median is reported."""
    model = plain_encoder(precision)
    before = encode_rate(model, texts)
    in_curate = curate_embed_rate(spark, corpus, len(texts), precision)
    after = encode_rate(model, texts)
    frame = spark.createDataFrame(
        [(f"{i:08d}", text) for i, text in enumerate(texts)], "id string, text string"
    )
    frame = frame.repartition(spark.sparkContext.defaultParallelism).persist()
    frame.count()
    pairs = []
    for _ in range(rounds):
        pairs.append(
            (encode_rate(model, texts), warm_stage_rate(spark, frame, len(texts), precision))
        )
    frame.unpersist()
    ratios = [stage / encode for encode, stage in pairs]
    return {
        "precision": precision,
        "texts": len(texts),
        "encode_per_s_around_curate": [round(before, 1), round(after, 1)],
        "stage_in_curate_per_s": round(in_curate, 1),
        "stage_in_curate_ratio": round(2 * in_curate / (before + after), 2),
        "rounds_encode_vs_warm_stage_per_s": [[round(a, 1), round(b, 1)] for a, b in pairs],
        "warm_stage_ratio_median": round(statistics.median(ratios), 2),
    }


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    for line in machine_lines(("sentence_transformers", "transformers")):
        print(line, flush=True)
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--master", default="local[*]")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    texts = news_articles(args.texts, seed=1)
    with tempfile.TemporaryDirectory() as workdir:
        corpus = Path(workdir, "news.jsonl")
        corpus.write_text("".join(json.dumps({"id": f"{i:08d}", "text": t}) + "\n"
                                  for i, t in enumerate(texts)))  # fmt: skip
        spark = spark_session(args.master)
        print(f"Spark {args.master}: {spark.sparkContext.defaultParallelism} task slots; goal "
              f"stage/encode >= {GOAL}", flush=True)  # fmt: skip
        for precision in args.precisions:
            print(json.dumps(measure(spark, corpus, texts, precision, args.rounds)), flush=True)
        spark.stop()
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
