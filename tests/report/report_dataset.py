"""A small curated dataset that honours the contract, written with pyarrow for report tests.

The rows are generated, then deduplicated by a tiny reference implementation (exact
text matches, then greedy cosine dedup within clusters), so every column is
consistent and the manifest's accounting is computed from the rows themselves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from batchcraft.dataset.schema import row_schema

DIM = 8
NUM_CLUSTERS = 6
EPS = 0.05
NEAR_THRESHOLD = 0.99
SOURCES = {"web": 130, "books": 60, "code": 30}
CONCEPTS = [f"concept-{i:02d}" for i in range(40)]
PAYLOAD = "<script>document.title='PWNED';window.__pwned=1</script><img src=x onerror=\"window.__pwned=2\">"
REJECTS = [  # (source, reason, raw)
    ("web", "empty_text", '{"text": ""}'),
    ("web", "empty_text", '{"text": "   "}'),
    ("books", "empty_text", '{"text": null}'),
    ("web", "invalid_json", '{"text": "unterminated'),
    ("code", "invalid_json", PAYLOAD),
    ("books", "too_long", "x" * 500),
]


@dataclass
class FixtureDataset:
    """The written dataset plus the frames it was written from (the tests' oracle)."""

    path: Path
    rows: pd.DataFrame
    rejects: pd.DataFrame
    manifest: dict[str, Any]
    centroids: np.ndarray


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def _generate(rng: np.random.Generator, centroids: np.ndarray) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    weights = np.array([0.34, 0.24, 0.16, 0.12, 0.09, 0.05])
    for source, count in SOURCES.items():
        for number in range(count):
            cluster = int(rng.choice(NUM_CLUSTERS, p=weights))
            embedding = _unit(centroids[cluster] + rng.normal(0, 0.45, DIM))
            text = f"{source} document {number}: notes on topic {cluster} ({rng.integers(1e6)})"
            if rows and number % 11 == 5:  # a semantic or near copy of an earlier row
                base = rows[int(rng.integers(len(rows)))]
                noise = 0.03 if number % 2 else 0.2
                cluster, embedding = (
                    base["cluster"],
                    _unit(base["embedding"] + rng.normal(0, noise, DIM)),
                )
                text = base["text"].replace("notes", "remarks") + f" v{number}"
            concepts = sorted(
                {CONCEPTS[min(int(rng.zipf(1.6)) - 1, 39)] for _ in range(rng.integers(0, 5))}
            )
            rows.append(
                {
                    "id": f"{source}-{number:04d}",
                    "text": text,
                    "source": source,
                    "cluster": cluster,
                    "embedding": embedding,
                    "concepts": concepts,
                }
            )
    rows[7]["text"] = PAYLOAD
    for copy_of, position in ((7, 40), (12, 90), (3, 150)):  # exact duplicates
        rows[position] |= {k: rows[copy_of][k] for k in ("text", "cluster", "embedding")}
    return rows


def _deduplicate(rows: list[dict[str, Any]], centroids: np.ndarray) -> None:
    threshold = 1.0 - EPS
    first_by_text: dict[str, str] = {}
    for row in rows:
        row["centroid_sim"] = float(row["embedding"] @ centroids[row["cluster"]])
        original = first_by_text.setdefault(row["text"], row["id"])
        exact = original != row["id"]
        row |= {
            "dup_of": original if exact else None,
            "dup_kind": "exact" if exact else None,
            "keep": not exact,
            "max_sim": 1.0,
        }
    compared = [row for row in rows if row["dup_kind"] != "exact"]
    for row in compared:
        peers = [o for o in compared if o["cluster"] == row["cluster"] and o is not row]
        sims = [float(row["embedding"] @ o["embedding"]) for o in peers]
        row["max_sim"] = max(sims, default=0.0)
        kept = [
            (s, o)
            for s, o in zip(sims, peers, strict=True)
            if o["keep"] and compared.index(o) < compared.index(row)
        ]
        best = max(kept, key=lambda pair: pair[0], default=None)
        if best is not None and best[0] >= np.float32(threshold):
            row |= {
                "keep": False,
                "dup_of": best[1]["id"],
                "dup_kind": "near" if best[0] >= NEAR_THRESHOLD else "semantic",
            }


def _counts(frame: pd.DataFrame, rejects: pd.DataFrame) -> dict[str, int]:
    return {
        "in": len(frame) + len(rejects),
        "rejected": len(rejects),
        "exact_duplicates": int((frame.dup_kind == "exact").sum()),
        "near_duplicates": int((frame.dup_kind == "near").sum()),
        "semantic_duplicates": int((frame.dup_kind == "semantic").sum()),
        "kept": int(frame.keep.sum()),
    }


def _stages(counts: dict[str, int]) -> list[dict[str, int | str]]:
    valid = counts["in"] - counts["rejected"]
    unique = valid - counts["exact_duplicates"]
    semantic = counts["near_duplicates"] + counts["semantic_duplicates"]
    return [
        {
            "stage": "validate",
            "in": counts["in"],
            "kept": valid,
            "duplicates": 0,
            "rejected": counts["rejected"],
        },
        {
            "stage": "exact_dedup",
            "in": valid,
            "kept": unique,
            "duplicates": counts["exact_duplicates"],
            "rejected": 0,
        },
        {
            "stage": "semantic_dedup",
            "in": unique,
            "kept": unique - semantic,
            "duplicates": semantic,
            "rejected": 0,
        },
    ]


def _manifest(
    frame: pd.DataFrame, rejects: pd.DataFrame, shards: list[tuple[str, pd.DataFrame]]
) -> dict[str, Any]:
    sources = sorted(SOURCES)
    by_source = {
        s: _counts(frame[frame.source == s], rejects[rejects.source == s]) for s in sources
    }
    stages = _stages(_counts(frame, rejects))
    for stage in stages:
        stage["by_source"] = {  # type: ignore[assignment]
            s: {
                k: v
                for k, v in next(
                    x for x in _stages(by_source[s]) if x["stage"] == stage["stage"]
                ).items()
                if k != "stage"
            }
            for s in sources
        }
    return {
        "schema_version": 1,
        "created_by": "batchcraft 0.1.0",
        "created_at": "2026-01-02T03:04:05+00:00",
        "num_rows": len(frame),
        "num_kept": int(frame.keep.sum()),
        "has_pairs": False,
        "embedding": {
            "model": "fixture-encoder",
            "dim": DIM,
            "dtype": "float32",
            "precision": "fp32",
            "normalized": True,
        },
        "clustering": {"num_clusters": NUM_CLUSTERS, "sample_size": len(frame), "iterations": 20},
        "semantic_dedup": {
            "eps": EPS,
            "threshold": 1 - EPS,
            "near_threshold": NEAR_THRESHOLD,
            "keep_policy": "first",
            "second_cluster": False,
        },
        "counts": {
            "total": _counts(frame, rejects),
            "by_source": by_source,
            "rejected_by_reason": rejects.reason.value_counts().to_dict(),
            "stages": stages,
        },
        "timings": {
            "validate": 1.25,
            "exact_dedup": 0.5,
            "embed": 12.0,
            "cluster": 2.5,
            "semantic_dedup": 3.0,
        },
        "parameters": {
            "eps": EPS,
            "num_clusters": NUM_CLUSTERS,
            "model": "fixture-encoder",
            "batch": {"size": 64},
        },
        "inputs": [
            {
                "path": f"corpus/{s}.jsonl",
                "format": "jsonl",
                "source": s,
                "bytes": 1000 + i,
                "sha256": f"{i:064x}",
            }
            for i, s in enumerate(sources)
        ],
        "shards": [
            {"path": f"data/{name}", "num_rows": len(part), "num_kept": int(part.keep.sum())}
            for name, part in shards
        ],
    }


def _write_rows(path: Path, frame: pd.DataFrame, row_group_size: int) -> None:
    schema = row_schema(DIM)  # the pipeline's own contract schema
    columns = {
        name: frame[name].tolist() if name in frame else [None] * len(frame)
        for name in schema.names
    }
    columns["embedding"] = [list(map(float, e)) for e in frame.embedding]
    pq.write_table(pa.table(columns, schema=schema), path, row_group_size=row_group_size)


def make_dataset(path: Path, seed: int = 0) -> FixtureDataset:
    """Write a contract-conforming curated dataset into ``path`` and return its oracle."""
    rng = np.random.default_rng(seed)
    centroids = _unit(rng.normal(size=(NUM_CLUSTERS, DIM))).astype(np.float32)
    rows = _generate(rng, centroids.astype(np.float64))
    _deduplicate(rows, centroids.astype(np.float64))
    frame = pd.DataFrame(rows)
    frame["max_sim"] = frame.max_sim.astype(np.float32)
    frame["centroid_sim"] = frame.centroid_sim.astype(np.float32)
    rejects = pd.DataFrame(
        [
            {
                "source": s,
                "file": f"corpus/{s}.jsonl",
                "record": i + 1,
                "id": None,
                "reason": r,
                "raw": raw,
            }
            for i, (s, r, raw) in enumerate(REJECTS)
        ]
    )
    (path / "data").mkdir(parents=True)
    (path / "rejects").mkdir()
    shards = [("part-00000.parquet", frame.iloc[:120]), ("part-00001.parquet", frame.iloc[120:])]
    for name, part in shards:
        _write_rows(path / "data" / name, part, row_group_size=50)
    pq.write_table(
        pa.Table.from_pandas(rejects, preserve_index=False).cast(
            pa.schema(
                [
                    ("source", pa.string()),
                    ("file", pa.string()),
                    ("record", pa.int64()),
                    ("id", pa.string()),
                    ("reason", pa.string()),
                    ("raw", pa.string()),
                ]
            )
        ),
        path / "rejects" / "part-00000.parquet",
    )
    np.save(path / "centroids.npy", centroids)
    manifest = _manifest(frame, rejects, shards)
    (path / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return FixtureDataset(path, frame, rejects, manifest, centroids)


def write_provenance(
    directory: Path, dataset: FixtureDataset, extra: list[dict[str, Any]] = ()
) -> None:  # type: ignore[assignment]
    """Two jobs' provenance logs over the kept rows (uniform over 2 epochs, JEST with repeats)."""
    directory.mkdir(parents=True, exist_ok=True)
    kept = dataset.rows[dataset.rows.keep].id.tolist()
    rng = np.random.default_rng(1)
    records = []
    for epoch in range(2):
        order = rng.permutation(len(kept))
        for step, start in enumerate(range(0, len(order), 16)):
            ids = [kept[i] for i in order[start : start + 16]]
            records.append(
                {
                    "job": "run-a",
                    "batch_id": f"a/{epoch}/{step}",
                    "epoch": epoch,
                    "step": epoch * 20 + step,
                    "rank": step % 2,
                    "selector": "uniform",
                    "ids": ids,
                    "info": {"concept_entropy": 2.0 + 0.01 * step},
                    "time": 1767225600.0 + step,
                }
            )
    web_heavy = [i for i in kept if i.startswith("web")]
    for step in range(12):
        ids = list(rng.choice(web_heavy, 16))
        records.append(
            {
                "job": "run-b",
                "batch_id": f"b/0/{step}",
                "epoch": 0,
                "step": step,
                "rank": 0,
                "selector": "jest",
                "ids": ids,
                "info": {"learnability": 1.0 / (1 + step), "hardness": 0.5},
                "time": 1767225700.0 + step,
            }
        )
    half = len(records) // 2
    (directory / "run-a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records[:half]))
    lines = [json.dumps(r) for r in records[half:] + list(extra)]
    (directory / "nested").mkdir(exist_ok=True)
    (directory / "nested" / "run-b.jsonl").write_text("\n".join(lines) + "\n")
