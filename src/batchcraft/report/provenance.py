"""Reader of the batch service's provenance log.

The record format is `batchcraft.dataset.provenance`'s. The log is a directory
of JSON Lines files (``*.jsonl``, searched recursively). Blank lines are
skipped; malformed lines are counted and reported, never fatal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from batchcraft.dataset.provenance import BatchRecord, parse_record

FLUSH_EVERY = 1_000_000  # served ids buffered in Python lists before aggregation in Arrow


@dataclass
class ProvenanceLog:
    """Everything the serving section needs from a provenance directory.

    Attributes:
        directory: Where the log was read from.
        files: The JSONL files read.
        batches: One record per served batch.
        served: Table (job, epoch, id, times): how often each id was served per job epoch.
        malformed: Number of lines that were not valid batch records.
        first_error: Location and reason of the first malformed line.
    """

    directory: Path
    files: list[Path]
    batches: list[BatchRecord] = field(default_factory=list)
    served: pa.Table | None = None
    malformed: int = 0
    first_error: str | None = None


class _ServedBuffer:
    """Aggregates (job, epoch, id) occurrences in bounded chunks."""

    def __init__(self) -> None:
        self.jobs: list[str] = []
        self.epochs: list[int] = []
        self.ids: list[str] = []
        self.partials: list[pa.Table] = []

    def add(self, job: str, epoch: int, ids: list[str]) -> None:
        self.jobs.extend([job] * len(ids))
        self.epochs.extend([epoch] * len(ids))
        self.ids.extend(ids)
        if len(self.ids) >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        if not self.ids:
            return
        table = pa.table(
            {
                "job": pa.array(self.jobs, pa.string()),
                "epoch": pa.array(self.epochs, pa.int64()),
                "id": pa.array(self.ids, pa.string()),
                "times": pa.array([1] * len(self.ids), pa.int64()),
            }
        )
        self.partials.append(_sum_times(table))
        self.jobs, self.epochs, self.ids = [], [], []

    def table(self) -> pa.Table:
        self.flush()
        if not self.partials:
            schema = {"job": pa.string(), "epoch": pa.int64(), "id": pa.string()}
            return pa.table(
                {name: pa.array([], kind) for name, kind in schema.items()}
                | {"times": pa.array([], pa.int64())}
            )
        return _sum_times(pa.concat_tables(self.partials))


def _sum_times(table: pa.Table) -> pa.Table:
    grouped = table.group_by(["job", "epoch", "id"]).aggregate([("times", "sum")])
    return grouped.rename_columns(["job", "epoch", "id", "times"])


def read_provenance(directory: Path) -> ProvenanceLog | None:
    """Read every ``*.jsonl`` file under ``directory``; None when there is no log."""
    if not directory.is_dir():
        return None
    files = sorted(directory.rglob("*.jsonl"))
    if not files:
        return None
    log = ProvenanceLog(directory=directory, files=files)
    buffer = _ServedBuffer()
    for path in files:
        with path.open(encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    batch, ids = parse_record(line)
                except ValueError as exc:  # json.JSONDecodeError is a ValueError
                    log.malformed += 1
                    log.first_error = log.first_error or f"{path.name}:{number}: {exc}"
                    continue
                log.batches.append(batch)
                buffer.add(batch.job, batch.epoch, ids)
    log.served = buffer.table()
    return log
