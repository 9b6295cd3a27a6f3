"""Save and restore job state atomically under a checkpoint directory.

Layout: ``<dir>/jobs/<job-key>/state.json`` (config, per-rank cursors, cached
selections and epoch plans) and ``feedback.npz`` (the feedback table). Each
file is written to a temporary file in the same directory, flushed, fsynced
and moved into place with ``os.replace``, so a reader (or a restarted
server) sees either the old or the new file, never a torn one.

Cached selections keep their JSON-serialisable info; per-row info arrays
(masks) are not saved.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from batchcraft._files import atomic_write, json_default, safe_file_name
from batchcraft.batcher.config import Position
from batchcraft.batcher.feedback import FeedbackTable
from batchcraft.batcher.job import GlobalSelection, Job
from batchcraft.errors import DatasetError

STATE_VERSION = 1


def job_directory(root: Path, job_id: str) -> Path:
    """The directory of ``job_id``: a readable prefix plus a hash (ids may hold any character)."""
    return root / "jobs" / safe_file_name(job_id)


def job_state(job: Job) -> dict[str, Any]:
    """The JSON-serialisable state of ``job`` (without the feedback table)."""
    with job._lock:
        return {
            "version": STATE_VERSION,
            "job_id": job.job_id,
            "config": json.loads(job.config.canonical_json()),
            "dataset_rows": job.dataset.num_rows,
            "cursors": {str(rank): [p.epoch, p.step] for rank, p in job.cursors.items()},
            "selections": [_selection_json(s) for s in job.selections.values()],
            "plans": {str(e): [b.tolist() for b in plan] for e, plan in job.plans.items()},
        }


def save_job(job: Job, root: Path, *, feedback: bool = True, fsync: bool = True) -> None:
    """Write the job's state (and, if ``feedback``, its feedback table)."""
    directory = job_directory(root, job.job_id)
    if feedback:
        buffer = io.BytesIO()
        np.savez(buffer, **job.feedback.to_arrays())  # type: ignore[arg-type]
        atomic_write(directory / "feedback.npz", buffer.getvalue(), fsync=fsync)
    atomic_write(directory / "state.json", json.dumps(job_state(job)).encode(), fsync=fsync)


def restore_job(job: Job, root: Path) -> bool:
    """Load saved state into a fresh ``job``; False if there is none.

    Raises:
        DatasetError: the saved state belongs to a different dataset version.
    """
    directory = job_directory(root, job.job_id)
    path = directory / "state.json"
    if not path.exists():
        return False
    state = json.loads(path.read_text())
    if state.get("version") != STATE_VERSION:
        raise DatasetError(f"{path}: state version {state.get('version')} != {STATE_VERSION}")
    if state["dataset_rows"] != job.dataset.num_rows:
        raise DatasetError(
            f"{path} was saved for {state['dataset_rows']} kept rows, but dataset "
            f"{job.dataset.name!r} now has {job.dataset.num_rows}; remove the job's checkpoint"
        )
    with job._lock:
        job.cursors = {int(r): Position(*p) for r, p in state["cursors"].items()}
        for item in state["selections"]:
            selection = _selection_from_json(item)
            job.selections[selection.position] = selection
        job.plans = {
            int(e): [np.asarray(b, np.int64) for b in plan] for e, plan in state["plans"].items()
        }
    feedback_path = directory / "feedback.npz"
    if feedback_path.exists():
        with np.load(feedback_path) as arrays:
            job.feedback = FeedbackTable.from_arrays(job.dataset.num_rows, dict(arrays))
    return True


def _selection_json(selection: GlobalSelection) -> dict[str, Any]:
    info = {k: v for k, v in selection.info.items() if not isinstance(v, np.ndarray)}
    return {
        "position": [selection.position.epoch, selection.position.step],
        "positions": selection.positions.tolist(),
        "weights": None if selection.weights is None else selection.weights.tolist(),
        "info": json.loads(json.dumps(info, default=json_default)),
    }


def _selection_from_json(item: dict[str, Any]) -> GlobalSelection:
    weights = item["weights"]
    return GlobalSelection(
        Position(*item["position"]),
        np.asarray(item["positions"], np.int64),
        None if weights is None else np.asarray(weights, np.float32),
        item["info"],
    )
