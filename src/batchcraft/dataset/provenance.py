"""The per-batch provenance record: written by the service, read by the report.

A provenance log is a directory of JSON Lines files,
``<provenance_dir>/<dataset>/<job>.jsonl``, one JSON object per line and per
batch a trainer received::

    {"job": "run-1", "epoch": 0, "step": 17, "rank": 0, "selector": "jest",
     "ids": ["a1", "b7", ...], "batch_id": "run-1/e0/s17/r0",
     "info": {"learnability": 0.42}, "time": 1767225600.0}

``job``, ``epoch``, ``step``, ``rank``, ``selector`` (the selector that made
the batch, e.g. ``uniform`` while a feedback selector waits for feedback) and
``ids`` are always present; ``batch_id`` is `batch_id`'s ``JOB/eEPOCH/sSTEP/rRANK``;
``info`` keeps the selector's finite numeric metrics; ``time`` is the Unix
time the batch was acknowledged. Dataset and job names that are not plain
file names (``a-z A-Z 0-9 _ . -``) become a safe prefix plus a hash.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from batchcraft._files import safe_file_name

REQUIRED_FIELDS: dict[str, type] = {
    "job": str,
    "epoch": int,
    "step": int,
    "rank": int,
    "selector": str,
    "ids": list,
}
OPTIONAL_FIELDS: dict[str, str] = {
    "batch_id": "str",
    "info": "{metric: number}",
    "time": "float (unix s)",
}


@dataclass(frozen=True)
class BatchRecord:
    """One served batch without its ids (a reader aggregates those separately)."""

    job: str
    batch_id: str
    epoch: int
    step: int
    rank: int
    selector: str
    size: int
    info: dict[str, float]
    time: float | None


def batch_id(job: str, epoch: int, step: int, rank: int) -> str:
    """The id of rank ``rank``'s batch at (``epoch``, ``step``) of ``job``."""
    return f"{job}/e{epoch}/s{step}/r{rank}"


def log_path(directory: Path, dataset: str, job: str) -> Path:
    """The file that holds the records of ``job`` on ``dataset`` under ``directory``."""
    return (
        directory
        / safe_file_name(dataset, keep_plain=True)
        / f"{safe_file_name(job, keep_plain=True)}.jsonl"
    )


def encode_record(
    *,
    batch_id: str,
    job: str,
    epoch: int,
    step: int,
    rank: int,
    selector: str,
    ids: list[str],
    metrics: dict[str, Any],
) -> bytes:
    """One record as a JSON line (``time`` is now); ``batch_id`` is `batch_id`'s."""
    record = {
        "job": job,
        "epoch": int(epoch),
        "step": int(step),
        "rank": int(rank),
        "selector": selector,
        "ids": [str(identifier) for identifier in ids],
        "batch_id": batch_id,
        "info": numeric_info(metrics),
        "time": round(time.time(), 6),
    }
    return (json.dumps(record, separators=(",", ":")) + "\n").encode()


def parse_record(line: str) -> tuple[BatchRecord, list[str]]:
    """One JSON line as a `BatchRecord` plus its ids.

    Raises:
        ValueError: the line is not a valid record (the message says why).
    """
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
    when = record.get("time")
    batch = BatchRecord(
        job=record["job"],
        batch_id=str(record.get("batch_id", "")),
        epoch=record["epoch"],
        step=record["step"],
        rank=record["rank"],
        selector=record["selector"],
        size=len(ids),
        info=metrics,
        time=float(when) if isinstance(when, int | float) else None,
    )
    return batch, ids


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


def describe_format() -> dict[str, Any]:
    """The record format (embedded in report.json)."""
    return {
        "files": "*.jsonl under the provenance directory (recursive), one JSON object per line",
        "required": {name: kind.__name__ for name, kind in REQUIRED_FIELDS.items()},
        "optional": dict(OPTIONAL_FIELDS),
    }
