"""Write small synthetic curated datasets that follow the DESIGN.md contract.

For tests, benchmarks and demos of the service without running the pipeline.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from batchcraft.dataset import layout
from batchcraft.dataset.manifest import write_manifest
from batchcraft.dataset.schema import SCHEMA_VERSION

SOURCES = ("news", "web", "books")
CONCEPTS = ("cat", "dog", "car", "tree", "boat", "sun", "rain", "city")


def write_curated_dataset(
    root: str | Path,
    *,
    num_rows: int = 100,
    dim: int = 8,
    num_shards: int = 2,
    duplicate_every: int = 0,
    with_pairs: bool = False,
    num_tokens: int = 0,
    seed: int = 0,
    id_prefix: str = "row",
) -> Path:
    """Write a curated dataset directory and return its path.

    Args:
        root: directory to create (may exist).
        num_rows: rows in total, kept and removed.
        dim: embedding dimension.
        num_shards: Parquet files under ``data/``.
        duplicate_every: every n-th row is a removed duplicate (``keep = false``); 0 for none.
        with_pairs: add ``pair_text`` and ``pair_embedding``.
        num_tokens: add an int32 ``tokens`` fixed_size_list column of this width (0: none).
        seed: seed of the random content.
        id_prefix: ids are ``{id_prefix}-{i:06d}`` (datasets served together need
            distinct ids).
    """
    root = Path(root)
    layout.data_dir(root).mkdir(parents=True, exist_ok=True)
    layout.rejects_dir(root).mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    table = _table(num_rows, dim, duplicate_every, with_pairs, num_tokens, rng, id_prefix)
    shards = _write_shards(root, table, num_shards)
    centroids = rng.standard_normal((4, dim)).astype(np.float32)
    np.save(
        layout.centroids_path(root), centroids / np.linalg.norm(centroids, axis=1, keepdims=True)
    )
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "num_rows": num_rows,
        "num_kept": sum(s["num_kept"] for s in shards),
        "embedding": {"model": "synthetic", "dim": dim, "dtype": "float32", "normalized": True},
        "has_pairs": with_pairs,
        "shards": shards,
    }
    write_manifest(root, manifest)
    return root


def _write_shards(root: Path, table: pa.Table, num_shards: int) -> list[dict[str, Any]]:
    """Write ``table`` as ``num_shards`` contiguous shards; the manifest's shard entries."""
    shards = []
    bounds = np.linspace(0, table.num_rows, num_shards + 1).astype(int)
    for index, (start, stop) in enumerate(itertools.pairwise(bounds.tolist())):
        part = table.slice(start, stop - start)
        relative = layout.shard_name(index)
        pq.write_table(part, root / relative)
        kept = int(np.asarray(part.column("keep")).sum())
        shards.append({"path": relative, "num_rows": part.num_rows, "num_kept": kept})
    return shards


def _unit(rng: np.random.Generator, rows: int, dim: int) -> pa.FixedSizeListArray:
    matrix = rng.standard_normal((rows, dim)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    return pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)), dim)


def _table(
    num_rows: int,
    dim: int,
    duplicate_every: int,
    with_pairs: bool,
    num_tokens: int,
    rng: np.random.Generator,
    id_prefix: str,
) -> pa.Table:
    ids = [f"{id_prefix}-{i:06d}" for i in range(num_rows)]
    keep = np.ones(num_rows, dtype=bool)
    if duplicate_every > 0:
        keep[duplicate_every - 1 :: duplicate_every] = False
    dup_of = [None if k else ids[i - 1] for i, k in enumerate(keep)]
    columns: dict[str, pa.Array] = {
        "id": pa.array(ids),
        "text": pa.array([f"text number {i}" for i in range(num_rows)]),
        "pair_text": pa.array(
            [f"pair {i}" if with_pairs else None for i in range(num_rows)], pa.string()
        ),
        "source": pa.array(rng.choice(SOURCES, size=num_rows, p=[0.6, 0.3, 0.1]).tolist()),
        "embedding": _unit(rng, num_rows, dim),
        "cluster": pa.array(rng.integers(0, 4, num_rows), pa.int32()),
        "centroid_sim": pa.array(rng.uniform(0.2, 1.0, num_rows).astype(np.float32)),
        "dup_of": pa.array(dup_of, pa.string()),
        "dup_kind": pa.array([None if k else "semantic" for k in keep], pa.string()),
        "max_sim": pa.array(rng.uniform(0.0, 1.0, num_rows).astype(np.float32)),
        "keep": pa.array(keep),
        "concepts": pa.array(
            [
                rng.choice(CONCEPTS, size=int(rng.integers(1, 4)), replace=False).tolist()
                for _ in ids
            ],
            pa.list_(pa.string()),
        ),
        "ref_loss": pa.array(rng.uniform(0.5, 3.0, num_rows).astype(np.float32)),
    }
    if with_pairs:
        columns["pair_embedding"] = _unit(rng, num_rows, dim)
    if num_tokens > 0:
        tokens = rng.integers(0, 32000, (num_rows, num_tokens), dtype=np.int32)
        columns["tokens"] = pa.FixedSizeListArray.from_arrays(
            pa.array(tokens.reshape(-1)), num_tokens
        )
    return pa.table(columns)
