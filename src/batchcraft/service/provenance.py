"""The per-batch provenance log, in the format `batchcraft.report.provenance` reads.

Layout: ``<provenance_dir>/<dataset>/<job-key>.jsonl``, one JSON object per
line and per batch a trainer received::

    {"job": "run-1", "epoch": 0, "step": 17, "rank": 0, "selector": "jest",
     "ids": ["a1", "b7", ...], "batch_id": "run-1/e0/s17/r0",
     "info": {"learnability": 0.42}, "time": 1767225600.0}

``job``, ``epoch``, ``step``, ``rank``, ``selector`` (the selector that made
the batch, e.g. ``uniform`` while a feedback selector waits for feedback)
and ``ids`` are always present; ``info`` keeps the selector's finite numeric
metrics. One directory per dataset, so ``batchcraft report DATASET
--provenance-dir <provenance_dir>/<dataset>`` summarises exactly that
dataset's exposure. Names that are not plain file names (``a-z A-Z 0-9 _ . -``)
become a safe prefix plus a hash.

A batch is logged when the client acknowledges it (`Session` calls `record`
from its ack handler), so batches a disconnected client never received are
not counted, and a resumed client's re-served batches are logged once. Each
line is appended with one ``write`` on an ``O_APPEND`` descriptor: lines of
concurrent writers never interleave, and a server killed mid-line leaves at
most that line torn (the next writer starts a fresh line; the reader counts
the torn one as malformed).
"""

from __future__ import annotations

import collections
import json
import math
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from batchcraft._files import safe_file_name
from batchcraft.batcher.dataset import CuratedDataset
from batchcraft.batcher.job import RankBatch


class ProvenanceLog:
    """Appends batch records under ``directory`` (thread-safe).

    Args:
        directory: the provenance directory (created on first use).
        max_open: files kept open at once; the least recently written is closed
            beyond it (a long-lived server sees many jobs, each with its own file).
    """

    def __init__(self, directory: Path, max_open: int = 64) -> None:
        self.directory = directory
        self.max_open = max(1, max_open)
        self._files: collections.OrderedDict[tuple[str, str], int] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._closed = False

    def path_for(self, dataset: str, job_id: str) -> Path:
        """The file that holds the records of ``job_id`` on ``dataset``."""
        return (
            self.directory
            / safe_file_name(dataset, keep_plain=True)
            / f"{safe_file_name(job_id, keep_plain=True)}.jsonl"
        )

    def record(
        self,
        batch_id: str,
        job_id: str,
        dataset: CuratedDataset,
        batch: RankBatch,
        selector: str,
    ) -> None:
        """Append the record of one received batch."""
        entry = batch_record(batch_id, job_id, dataset, batch, selector)
        line = (json.dumps(entry, separators=(",", ":")) + "\n").encode()
        with self._lock:  # close() may run concurrently, from the server's shutdown
            if self._closed:
                return
            os.write(self._descriptor(dataset.name, job_id), line)

    def close(self) -> None:
        """Close every file; later records are dropped."""
        with self._lock:
            self._closed = True
            for descriptor in self._files.values():
                os.close(descriptor)
            self._files.clear()

    def _descriptor(self, dataset: str, job_id: str) -> int:
        """The open file of ``(dataset, job_id)`` (call with the lock held)."""
        key = (dataset, job_id)
        descriptor = self._files.get(key)
        if descriptor is not None:
            self._files.move_to_end(key)
        else:
            while len(self._files) >= self.max_open:
                os.close(self._files.popitem(last=False)[1])
            path = self.path_for(dataset, job_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            if _ends_mid_line(path):  # a previous server was killed mid-write
                os.write(descriptor, b"\n")
            self._files[key] = descriptor
        return descriptor


def batch_record(
    batch_id: str, job_id: str, dataset: CuratedDataset, batch: RankBatch, selector: str
) -> dict[str, Any]:
    """The provenance record of one batch (see the module docstring)."""
    return {
        "job": job_id,
        "epoch": int(batch.position.epoch),
        "step": int(batch.position.step),
        "rank": int(batch.rank),
        "selector": selector,
        "ids": [str(identifier) for identifier in dataset.ids[batch.positions].tolist()],
        "batch_id": batch_id,
        "info": numeric_info(batch.metrics),
        "time": round(time.time(), 6),
    }


def numeric_info(metrics: dict[str, Any]) -> dict[str, float | int]:
    """The finite numeric entries of a selector's per-batch metrics."""
    info: dict[str, float | int] = {}
    for name, value in metrics.items():
        if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.number):
            continue
        number = value.item() if isinstance(value, np.generic) else value
        if isinstance(number, int) or math.isfinite(number):
            info[str(name)] = number
    return info


def _ends_mid_line(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        if handle.tell() == 0:
            return False
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) != b"\n"
