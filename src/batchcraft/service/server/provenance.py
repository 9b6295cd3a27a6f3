"""The per-batch provenance log: appends the records of `batchcraft.dataset.provenance`.

Layout and record format are stated there. One directory per dataset, so
``batchcraft report DATASET --provenance-dir <provenance_dir>/<dataset>``
summarises exactly that dataset's exposure.

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
import os
import threading
from pathlib import Path

from batchcraft.batcher.selections import RankBatch
from batchcraft.batcher.served_dataset import CuratedDataset
from batchcraft.dataset.provenance import encode_record, log_path


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
        return log_path(self.directory, dataset, job_id)

    def record(
        self,
        batch_id: str,
        job_id: str,
        dataset: CuratedDataset,
        batch: RankBatch,
        selector: str,
    ) -> None:
        """Append the record of one received batch."""
        line = encode_record(
            batch_id=batch_id,
            job=job_id,
            epoch=batch.position.epoch,
            step=batch.position.step,
            rank=batch.rank,
            selector=selector,
            ids=dataset.ids_at(batch.positions),
            metrics=batch.metrics,
        )
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


def _ends_mid_line(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        if handle.tell() == 0:
            return False
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) != b"\n"
