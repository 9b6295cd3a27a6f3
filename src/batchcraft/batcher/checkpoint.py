"""Save and restore job state atomically under a checkpoint directory.

Layout: ``<dir>/jobs/<job-key>/state.json`` (config, dataset identity, per-rank
cursors, cached selections and epoch plans) and ``feedback.npz`` (the feedback
table). Each file is written to a temporary file in the same directory,
flushed, fsynced and moved into place with ``os.replace``, so a reader (or a
restarted server) sees either the old or the new file, never a torn one.

Restoring is two steps: `read_checkpoint` parses and checks ``state.json``
(the registry then compares the saved config with the requested one), and
`restore_job` checks that the dataset is the one the state was saved for and
loads it, with the feedback table, into a fresh job. A file that cannot be
used raises `CheckpointError` naming it; nothing is discarded silently.

Cached selections keep their JSON-serialisable info; per-row info arrays
(masks) are not saved.
"""

from __future__ import annotations

import hashlib
import io
import json
import weakref
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from batchcraft._files import atomic_write, json_default, safe_file_name
from batchcraft.batcher.config import JobConfig, Position
from batchcraft.batcher.errors import CheckpointError
from batchcraft.batcher.feedback import FeedbackTable
from batchcraft.batcher.job import Job
from batchcraft.batcher.selections import GlobalSelection
from batchcraft.batcher.served_dataset import CuratedDataset
from batchcraft.errors import truncated_repr

# Version 1 gained the optional "dataset_fingerprint" and "finished_ranks"; files written
# without them still load.
STATE_VERSION = 1

_FINGERPRINTS: weakref.WeakKeyDictionary[CuratedDataset, str] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class SavedJob:
    """The parsed and checked ``state.json`` of one job (see `read_checkpoint`).

    Attributes:
        path: the ``state.json`` it was read from.
        config: the job's saved configuration.
        dataset_rows: kept rows of the dataset when it was saved.
        dataset_fingerprint: `dataset_fingerprint` then; None in older checkpoints.
    """

    path: Path
    config: JobConfig
    dataset_rows: int
    dataset_fingerprint: str | None
    cursors: dict[int, Position]
    selections: list[GlobalSelection]
    plans: dict[int, list[np.ndarray]]
    finished_ranks: frozenset[int] = frozenset()

    @property
    def directory(self) -> Path:
        """The job's checkpoint directory."""
        return self.path.parent


def job_directory(root: Path, job_id: str) -> Path:
    """The directory of ``job_id``: a readable prefix plus a hash (ids may hold any character)."""
    return root / "jobs" / safe_file_name(job_id)


def dataset_fingerprint(dataset: CuratedDataset) -> str:
    """A hash of ``dataset``'s manifest (or manifests), which identifies one curation run.

    Saved positions index the kept rows, so a checkpoint is only valid for the
    dataset it was saved with: a re-curated dataset (a new manifest, with its
    own ``created_at`` and counts) gets another fingerprint even when it keeps
    as many rows.
    """
    found = _FINGERPRINTS.get(dataset)
    if found is None:
        parts = dataset.manifests  # one for a plain directory, as checkpoints always had
        text = json.dumps(parts[0] if len(parts) == 1 else list(parts), sort_keys=True)
        found = hashlib.sha256(text.encode()).hexdigest()[:16]
        _FINGERPRINTS[dataset] = found
    return found


def job_state(job: Job) -> dict[str, Any]:
    """The JSON-serialisable state of ``job`` (without the feedback table)."""
    with job._lock:
        return {
            "version": STATE_VERSION,
            "job_id": job.job_id,
            "config": json.loads(job.config.canonical_json()),
            "dataset_rows": job.dataset.num_rows,
            "dataset_fingerprint": dataset_fingerprint(job.dataset),
            "cursors": {str(rank): [p.epoch, p.step] for rank, p in job.cursors.items()},
            "finished_ranks": sorted(job.finished_ranks),
            "selections": [_selection_json(s) for s in job.selections.values()],
            "plans": {str(e): [b.tolist() for b in plan] for e, plan in job.plans.items()},
        }


def save_job(job: Job, root: Path, *, feedback: bool = True, fsync: bool = True) -> None:
    """Write the job's state (and, if ``feedback``, its feedback table).

    Raises:
        OSError: a file could not be written (the previous checkpoint is left intact).
    """
    directory = job_directory(root, job.job_id)
    if feedback:
        buffer = io.BytesIO()
        np.savez(buffer, **job.feedback.to_arrays())  # type: ignore[arg-type]
        atomic_write(directory / "feedback.npz", buffer.getvalue(), fsync=fsync)
    atomic_write(directory / "state.json", json.dumps(job_state(job)).encode(), fsync=fsync)


def recovery_hint(directory: Path, job_id: str) -> str:
    """How a user gets past a checkpoint that cannot be used."""
    return (
        f"to start job {truncated_repr(job_id)} afresh, move {directory} aside (or delete it), "
        "or use another job id"
    )


def read_checkpoint(root: Path, job_id: str) -> SavedJob | None:
    """The saved state of ``job_id`` under ``root``; None if it has none.

    Raises:
        CheckpointError: ``state.json`` is unreadable, corrupt, of another state
            version or of another job; the message names it and how to recover.
    """
    path = job_directory(root, job_id) / "state.json"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _unusable(path, job_id, f"cannot be read ({exc})") from exc
    try:
        state = json.loads(data)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise _unusable(path, job_id, f"is not valid JSON ({exc}); it may be truncated") from exc
    if not isinstance(state, dict):
        raise _unusable(path, job_id, f"holds a JSON {type(state).__name__}, not an object")
    if state.get("version") != STATE_VERSION:
        raise _unusable(
            path,
            job_id,
            f"has state version {truncated_repr(state.get('version'))}; this server reads {STATE_VERSION}",
        )
    if state.get("job_id", job_id) != job_id:
        raise _unusable(path, job_id, f"holds job {truncated_repr(state['job_id'])}")
    try:
        return _parse_state(path, state)
    except KeyError as exc:
        raise _unusable(path, job_id, f"lacks the key {exc}") from exc
    except (TypeError, ValueError, AttributeError) as exc:  # ConfigError is a ValueError
        raise _unusable(path, job_id, f"is corrupt ({exc})") from exc


def restore_job(job: Job, saved: SavedJob) -> None:
    """Load ``saved`` (read for ``job.job_id``, with ``job.config``) into a fresh ``job``.

    Raises:
        CheckpointError: the state was saved for another version of the dataset,
            or ``feedback.npz`` is unreadable or corrupt.
    """
    _check_dataset(job, saved)
    feedback = _read_feedback(saved.directory / "feedback.npz", job)
    with job._lock:
        job.cursors = dict(saved.cursors)
        job.finished_ranks = set(saved.finished_ranks)
        job.selections = {s.position: s for s in saved.selections}
        job.plans = {epoch: list(plan) for epoch, plan in saved.plans.items()}
        if feedback is not None:
            job.feedback = feedback


def _check_dataset(job: Job, saved: SavedJob) -> None:
    dataset = job.dataset
    if saved.dataset_rows != dataset.num_rows:
        raise _unusable(
            saved.path,
            job.job_id,
            f"was saved for {saved.dataset_rows} kept rows, but dataset {dataset.name!r} "
            f"({dataset.root}) now has {dataset.num_rows}",
        )
    current = dataset_fingerprint(dataset)
    if saved.dataset_fingerprint is not None and saved.dataset_fingerprint != current:
        raise _unusable(
            saved.path,
            job.job_id,
            f"was saved for another version of dataset {dataset.name!r} (manifest "
            f"fingerprint {saved.dataset_fingerprint}; {dataset.root} now has {current}), "
            "so its positions would name other rows",
        )


def _read_feedback(path: Path, job: Job) -> FeedbackTable | None:
    try:
        with np.load(path, allow_pickle=False) as arrays:
            return FeedbackTable.from_arrays(
                job.dataset.num_rows, dict(arrays), job.feedback.estimator
            )
    except FileNotFoundError:
        return None  # none saved yet: the job had no feedback
    # A torn or foreign file: not a zip (pickle refused: ValueError), a bad zip, too short
    # (EOFError), a bare .npy (TypeError: not a context manager), bad array shapes.
    except (OSError, ValueError, TypeError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise _unusable(path, job.job_id, f"is corrupt ({type(exc).__name__}: {exc})") from exc


def _unusable(path: Path, job_id: str, problem: str) -> CheckpointError:
    return CheckpointError(
        f"checkpoint {path} of job {truncated_repr(job_id)} {problem}; {recovery_hint(path.parent, job_id)}"
    )


def _parse_state(path: Path, state: dict[str, Any]) -> SavedJob:
    """``state`` as typed values; raises KeyError, TypeError or ValueError if malformed."""
    config = JobConfig(**state["config"])
    rows = int(state["dataset_rows"])
    fingerprint = state.get("dataset_fingerprint")
    if fingerprint is not None and not isinstance(fingerprint, str):
        raise TypeError(f"dataset_fingerprint={truncated_repr(fingerprint)} must be a string")
    cursors = {int(rank): _position(p) for rank, p in state["cursors"].items()}
    for rank in cursors:
        if not 0 <= rank < config.world_size:
            raise ValueError(f"cursor of rank {rank}, but world_size={config.world_size}")
    plans = {
        int(epoch): [_positions(batch, rows) for batch in plan]
        for epoch, plan in state["plans"].items()
    }
    selections = [_selection_from_json(item, rows) for item in state["selections"]]
    finished = frozenset(int(rank) for rank in state.get("finished_ranks", ()))
    return SavedJob(path, config, rows, fingerprint, cursors, selections, plans, finished)


def _position(value: Any) -> Position:
    epoch, step = value
    return Position(int(epoch), int(step))


def _positions(value: Any, num_rows: int) -> np.ndarray:
    """Dataset positions: a 1-D int64 array within ``[0, num_rows)``."""
    positions = np.asarray(value, np.int64)
    if positions.ndim != 1:
        raise ValueError(f"positions must be a list of integers, got shape {positions.shape}")
    if positions.size and (positions.min() < 0 or positions.max() >= num_rows):
        raise ValueError(f"positions outside [0, {num_rows})")
    return positions


def _selection_json(selection: GlobalSelection) -> dict[str, Any]:
    info = {k: v for k, v in selection.info.items() if not isinstance(v, np.ndarray)}
    return {
        "position": [selection.position.epoch, selection.position.step],
        "positions": selection.positions.tolist(),
        "weights": None if selection.weights is None else selection.weights.tolist(),
        "info": json.loads(json.dumps(info, default=json_default)),
    }


def _selection_from_json(item: dict[str, Any], num_rows: int) -> GlobalSelection:
    positions = _positions(item["positions"], num_rows)
    weights = item["weights"]
    if weights is not None:
        weights = np.asarray(weights, np.float32)
        if weights.shape != positions.shape:
            raise ValueError(f"{len(weights)} weights for {len(positions)} selected rows")
    info = item["info"]
    if not isinstance(info, dict):
        raise TypeError(f"selection info must be an object, got {truncated_repr(info)}")
    return GlobalSelection(_position(item["position"]), positions, weights, info)
