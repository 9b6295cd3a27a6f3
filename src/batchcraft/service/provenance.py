"""The per-batch provenance log: one JSON line per served batch.

Each line has the batch id, job, dataset, rank, epoch, step, selector, the
selector's info, the row ids, and counts per source and per cluster, so the
report can summarise exposure without re-reading the dataset. Lines are
written unbuffered-by-line, so a killed server loses at most the line being
written.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from batchcraft.batcher.dataset import CuratedDataset
from batchcraft.batcher.job import RankBatch


class ProvenanceLog:
    """Appends batch records to a JSON-lines file (thread-safe)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = path.open("a", buffering=1, encoding="utf-8")
        self._lock = threading.Lock()
        self._columns: dict[tuple[str, str], np.ndarray] = {}

    def record(self, batch_id: str, job_id: str, dataset: CuratedDataset, batch: RankBatch) -> None:
        """Append the record of one served batch."""
        entry: dict[str, Any] = {
            "time": round(time.time(), 6),
            "batch_id": batch_id,
            "job": job_id,
            "dataset": dataset.name,
            "rank": batch.rank,
            "epoch": batch.position.epoch,
            "step": batch.position.step,
            "selector": batch.metrics.get("selector"),
            "num_rows": len(batch.positions),
            "info": batch.metrics,
            "ids": dataset.ids[batch.positions].tolist(),
        }
        for column, key in (("source", "sources"), ("cluster", "clusters")):
            values = self._column(dataset, column)
            if values is not None:
                names, counts = np.unique(values[batch.positions], return_counts=True)
                entry[key] = {str(n): int(c) for n, c in zip(names, counts, strict=True)}
        line = json.dumps(entry, default=_default)
        with self._lock:
            self._file.write(line + "\n")

    def close(self) -> None:
        """Flush and close the file."""
        with self._lock:
            self._file.close()

    def _column(self, dataset: CuratedDataset, column: str) -> np.ndarray | None:
        key = (dataset.name, column)
        if key not in self._columns:
            if column not in dataset.column_names:
                return None
            values = dataset.table.column(column).to_numpy(zero_copy_only=False)
            self._columns[key] = np.asarray(values)
        return self._columns[key]


def _default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
