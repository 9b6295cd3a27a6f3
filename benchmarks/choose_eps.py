"""Choose SemDeDup's default eps: precision/recall of removed rows against the synthetic ground truth.

Embeds the synthetic corpus with the bundled model (plain encoder, no Spark), applies the
chain-safe keep rule over all pairs at each eps, and scores the removed rows against the
injected near-duplicates and paraphrases (exact duplicates are removed earlier, by hash).

    python benchmarks/choose_eps.py --rows 3000 [--out results/eps.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from machine import machine_lines

from batchcraft.pipeline.dedup.exact import dedup_key
from batchcraft.pipeline.dedup.semantic import cluster_edges, greedy_keep, priority_order
from batchcraft.pipeline.embedding.sentence_encoder import (
    EncoderSpec,
    SentenceEncoder,
    resolve_model_path,
)
from batchcraft.pipeline.read.normalize import normalize_text
from batchcraft.synth import generate_corpus

EPS_GRID = (0.02, 0.04, 0.06, 0.08, 0.10, 0.12, 0.15, 0.20)


def load_rows(corpus_dir: Path) -> tuple[list[str], list[str]]:
    """Ids and normalised texts of the corpus, one row per exact-duplicate group (smallest id)."""
    first: dict[str, tuple[str, str]] = {}
    for path in sorted((corpus_dir / "corpus").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            text = normalize_text(record["text"])
            key = dedup_key(text, normalize_text(record["answer"]))
            if key not in first or record["id"] < first[key][0]:
                first[key] = (record["id"], text)
    ids, texts = zip(*sorted(first.values()), strict=True)
    return list(ids), list(texts)


def duplicate_groups(pairs: dict[str, str]) -> dict[str, str]:
    """Row id -> a representative of its ground-truth duplicate group (union-find)."""
    parent: dict[str, str] = {}

    def find(row: str) -> str:
        while parent.setdefault(row, row) != row:
            row = parent[row]
        return row

    for duplicate, original in pairs.items():
        parent[find(duplicate)] = find(original)
    return {row: find(row) for row in parent}


def score(
    ids: list[str], vectors: np.ndarray, centroid_sim: np.ndarray, truth: dict[str, str], eps: float
) -> dict:
    """Precision: removed rows whose representative is in their true duplicate group.

    Recall: true duplicate pairs (both rows present after exact dedup) of which at least
    one row was removed. Which of the two survives is the keep policy's choice, not an error.
    """
    order = priority_order(ids, centroid_sim, "prototypical")
    edges, _ = cluster_edges(vectors[order], 1.0 - eps)
    decisions = greedy_keep(len(ids), edges)
    groups = duplicate_groups(truth)
    removed = {
        ids[order[i]]: ids[order[decisions.dup_of[i]]] for i in np.flatnonzero(~decisions.keep)
    }
    hits = sum(
        1 for row, kept in removed.items() if row in groups and groups[row] == groups.get(kept)
    )
    resolved = sum(1 for a, b in truth.items() if a in removed or b in removed)
    precision = hits / len(removed) if removed else 1.0
    recall = resolved / len(truth)
    f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
    return {
        "eps": eps,
        "removed": len(removed),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
    }


def main() -> None:
    for line in machine_lines():  # figures mean little without the machine they ran on
        print(line, flush=True)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        corpus = generate_corpus(workdir, num_rows=args.rows, seed=args.seed, bad_rows=False)
        ids, texts = load_rows(Path(workdir))
    encoder = SentenceEncoder(EncoderSpec(resolve_model_path(None), "fp32"))
    vectors = encoder.encode(texts)
    centroid_sim = vectors @ (vectors.mean(axis=0) / np.linalg.norm(vectors.mean(axis=0)))
    present = set(ids)
    truth = {
        row: original
        for row, (kind, original) in corpus.duplicates.items()
        if kind in ("near", "semantic") and row in present and original in present
    }
    results = [score(ids, vectors, centroid_sim, truth, eps) for eps in EPS_GRID]
    print(
        f"rows after exact dedup: {len(ids)}; injected near + semantic duplicate pairs: {len(truth)}\n"
    )
    print("| eps | threshold | removed | precision | recall | F1 |\n|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['eps']:.2f} | {1 - r['eps']:.2f} | {r['removed']} | {r['precision']:.3f} | "
            f"{r['recall']:.3f} | {r['f1']:.3f} |"
        )
    best = max(results, key=lambda r: r["f1"])
    print(f"\nbest F1 at eps={best['eps']}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            json.dumps({"rows": len(ids), "truth": len(truth), "results": results}, indent=2)
        )


if __name__ == "__main__":
    main()
