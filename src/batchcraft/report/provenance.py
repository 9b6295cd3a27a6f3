"""Reader of the batch service's provenance log (the only module that knows its format).

A provenance log is a directory of JSON Lines files (``*.jsonl``, searched
recursively), one record per served batch::

    {"job": "run-1", "batch_id": "run-1/0/0/17", "epoch": 0, "step": 17, "rank": 0,
     "selector": "jest", "ids": ["a1", "b7", ...],
     "info": {"learnability": 0.42, "hardness": 0.61}, "time": 1767225600.0}

``info`` holds the selector's per-batch metrics (any numeric keys). Blank lines are
skipped; malformed lines are counted and reported, never fatal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

REQUIRED_FIELDS = {"job": str, "epoch": int, "step": int, "rank": int, "selector": str, "ids": list}
FLUSH_EVERY = 1_000_000  # served ids buffered in Python lists before aggregation in Arrow


@dataclass(frozen=True)
class BatchRecord:
    """One served batch without its ids (those are aggregated into ``ProvenanceLog.served``)."""

    job: str
    batch_id: str
    epoch: int
    step: int
    rank: int
    selector: str
    size: int
    info: dict[str, float]
    time: float | None


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


def _parse(line: str) -> tuple[BatchRecord, list[str]]:
    """One JSONL line as a BatchRecord plus its ids; ValueError when malformed."""
    record = json.loads(line)
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    for name, kind in REQUIRED_FIELDS.items():
        if not isinstance(record.get(name), kind) or isinstance(record.get(name), bool):
            raise ValueError(f"field {name!r} must be {kind.__name__}, got {record.get(name)!r}")
    ids = [str(value) for value in record["ids"]]
    info = record.get("info") or {}
    if not isinstance(info, dict):
        raise ValueError(f"field 'info' must be an object, got {info!r}")
    metrics = {
        str(name): float(value)
        for name, value in info.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
    time = record.get("time")
    batch = BatchRecord(
        job=record["job"],
        batch_id=str(record.get("batch_id", "")),
        epoch=record["epoch"],
        step=record["step"],
        rank=record["rank"],
        selector=record["selector"],
        size=len(ids),
        info=metrics,
        time=float(time) if isinstance(time, int | float) else None,
    )
    return batch, ids


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
                    batch, ids = _parse(line)
                except ValueError as exc:  # json.JSONDecodeError is a ValueError
                    log.malformed += 1
                    log.first_error = log.first_error or f"{path.name}:{number}: {exc}"
                    continue
                log.batches.append(batch)
                buffer.add(batch.job, batch.epoch, ids)
    log.served = buffer.table()
    return log


def describe_format() -> dict[str, Any]:
    """The record format this reader implements (embedded in report.json)."""
    return {
        "files": "*.jsonl under the provenance directory (recursive), one JSON object per line",
        "required": {name: kind.__name__ for name, kind in REQUIRED_FIELDS.items()},
        "optional": {"batch_id": "str", "info": "{metric: number}", "time": "float (unix s)"},
    }
