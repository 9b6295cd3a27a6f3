"""Two corpora A and B for the incremental-curation tests: B holds exact copies, MinHash
near copies and semantic near-duplicates (close vectors, other words) of A's rows, rows
reusing A's ids, duplicates within B, and new rows. Vectors are given (``vec``, 16-d),
so the tests run without the model."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

DIMENSION = 16
NUM_CLUSTERS = 6
SETTINGS: dict[str, Any] = {
    "id_column": "id",
    "embedding_column": "vec",
    "num_clusters": NUM_CLUSTERS,
    "write_report": False,
}
"""How the tests curate these corpora (given vectors, no model)."""


def _words(rng: np.random.Generator, count: int = 60) -> list[str]:
    return [f"w{int(i)}" for i in rng.integers(0, 5000, size=count)]


def _unit(vector: np.ndarray) -> list[float]:
    return (vector / np.linalg.norm(vector)).astype(np.float32).tolist()


def corpora(root: Path, seed: int = 0) -> tuple[Path, Path]:
    """Write ``root/a.jsonl`` (400 rows) and ``root/b.jsonl`` (about 190 rows)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(NUM_CLUSTERS, DIMENSION))
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)

    def vector(near: np.ndarray | None = None, spread: float = 0.6) -> np.ndarray:
        base = centers[rng.integers(NUM_CLUSTERS)] if near is None else near
        return base + spread * rng.normal(size=DIMENSION) / np.sqrt(DIMENSION)

    a = [{"id": f"a{i}", "text": " ".join(_words(rng)), "vec": _unit(vector())} for i in range(400)]
    b: list[dict[str, Any]] = []
    for i in range(30):  # exact copies of A's rows (case and spacing differ)
        row = a[i]
        b.append({"id": f"bx{i}", "text": "  " + row["text"].upper(), "vec": _unit(vector())})
    for i in range(30, 60):  # MinHash near copies: one word of 60 changed
        words = a[i]["text"].split()
        words[30] = "changed"
        b.append({"id": f"bm{i}", "text": " ".join(words), "vec": _unit(vector())})
    for i in range(60, 100):  # semantic near-duplicates: other words, a close vector
        close = _unit(vector(np.asarray(a[i]["vec"]), spread=0.08))
        b.append({"id": f"bs{i}", "text": " ".join(_words(rng)), "vec": close})
    for i in range(100, 110):  # ids of A's rows, other texts
        b.append({"id": a[i]["id"], "text": " ".join(_words(rng)), "vec": _unit(vector())})
    fresh = [
        {"id": f"bn{i}", "text": " ".join(_words(rng)), "vec": _unit(vector())} for i in range(60)
    ]
    for i in range(10):  # duplicates within B, of B's new rows
        fresh.append({"id": f"bd{i}", "text": fresh[i]["text"], "vec": _unit(vector())})
    b.extend(fresh)
    for name, rows in (("a", a), ("b", b)):
        (root / name).mkdir(parents=True)
        (root / name / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root / "a", root / "b"


def file_hashes(directory: Path) -> dict[str, str]:
    """SHA-256 of every file below ``directory``, by relative path."""
    return {
        str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }
