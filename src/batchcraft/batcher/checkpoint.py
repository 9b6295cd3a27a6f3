"""Save and restore job state atomically in a checkpoint store (`checkpoint_store`).

Layout: ``<dir>/jobs/<job-key>/state.json`` (config, dataset identity, per-rank
cursors, cached selections and epoch plans) and the feedback table it names.
Every file is written whole (`JobFiles.write`), so a reader (or a restarted
server) sees either the old or the new file, never a torn one.

Locally the feedback table is ``feedback.npz``, replaced before ``state.json``.
On an object store, which has no rename, it is written under a name of its
content, ``feedback.<hash>.npz``, *before* the ``state.json`` that names it,
and the table it supersedes is deleted after: ``state.json`` never names a
table not yet written, and a writer killed in between leaves an extra table
(removed when the job is next saved), never a state without its feedback.

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

from batchcraft._files import safe_file_name
from batchcraft.batcher.checkpoint_store import CheckpointStore, JobFiles
from batchcraft.batcher.config import JobConfig, Position
from batchcraft.batcher.errors import CheckpointError
from batchcraft.batcher.feedback import FeedbackTable
from batchcraft.batcher.feedback_sequences import Applied, from_arrays
from batchcraft.batcher.job import Job
from batchcraft.batcher.saved_selections import (
    saved_position,
    saved_positions,
    selection_from_json,
    selection_json,
)
from batchcraft.batcher.selections import GlobalSelection
from batchcraft.batcher.served_dataset import CuratedDataset
from batchcraft.errors import truncated_repr

# Version 1 gained the optional "dataset_fingerprint", "finished_ranks" and "feedback" (the
# feedback table's file name, else feedback.npz); files written without them still load.
STATE_VERSION = 1

FEEDBACK = "feedback.npz"
"""The feedback table's file in a local checkpoint directory."""
_FINGERPRINTS: weakref.WeakKeyDictionary[CuratedDataset, str] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class SavedJob:
    """The parsed and checked ``state.json`` of one job (see `read_checkpoint`).

    Attributes:
        files: the job's checkpoint files.
        path: the ``state.json`` it was read from (its URL on a store).
        config: the job's saved configuration.
        dataset_rows: kept rows of the dataset when it was saved.
        dataset_fingerprint: `dataset_fingerprint` then; None in older checkpoints.
    """

    files: JobFiles
    path: str
    config: JobConfig
    dataset_rows: int
    dataset_fingerprint: str | None
    cursors: dict[int, Position]
    selections: list[GlobalSelection]
    plans: dict[int, list[np.ndarray]]
    finished_ranks: frozenset[int] = frozenset()
    feedback: str | None = FEEDBACK
    """The feedback table's file name; None: the job had no feedback when saved."""

    @property
    def directory(self) -> str:
        """The job's checkpoint directory."""
        return self.files.url


def job_directory(root: Path, job_id: str) -> Path:
    """The directory of ``job_id`` in a local checkpoint directory (`CheckpointStore.job`)."""
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
            "selections": [selection_json(s) for s in job.selections.values()],
            "plans": {str(e): [b.tolist() for b in plan] for e, plan in job.plans.items()},
        }


def save_job(job: Job, store: CheckpointStore, *, feedback: bool = True) -> Applied | None:
    """Write the job's state (and, if ``feedback``, its feedback table) in ``store``; the
    numbered reports the saved table holds (`feedback_sequences`), None without a table.

    Raises:
        OSError: a file could not be written (the previous checkpoint is left intact).
    """
    files = store.job(job.job_id)
    previous = store.feedback_names.get(job.job_id)
    name = previous if store.is_local or previous is not None else None
    saved = None
    if feedback:
        buffer = io.BytesIO()
        arrays = job.feedback.to_arrays()
        saved = from_arrays(arrays)
        np.savez(buffer, **arrays)  # type: ignore[arg-type]
        data = buffer.getvalue()
        name = FEEDBACK if store.is_local else f"feedback.{_digest(data)}.npz"
        files.write(name, data)
    state = {**job_state(job), "feedback": FEEDBACK if store.is_local else name}
    files.write("state.json", json.dumps(state).encode())
    if name is not None:
        store.feedback_names[job.job_id] = name
    if not store.is_local and feedback:
        for other in files.names():  # superseded tables, and any a killed writer left
            if other.startswith("feedback.") and other != name:
                files.delete(other)
    return saved


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def recovery_hint(directory: Path | str, job_id: str) -> str:
    """How a user gets past a checkpoint that cannot be used."""
    return (
        f"to start job {truncated_repr(job_id)} afresh, move {directory} aside (or delete it), "
        "or use another job id"
    )


def read_checkpoint(store: CheckpointStore, job_id: str) -> SavedJob | None:
    """The saved state of ``job_id`` in ``store``; None if it has none.

    Raises:
        CheckpointError: ``state.json`` is unreadable, corrupt, of another state
            version or of another job; the message names it and how to recover.
    """
    files = store.job(job_id)
    path = files.location.join("state.json").url
    try:
        data = files.read("state.json")
    except OSError as exc:
        raise _unusable(path, job_id, f"cannot be read ({exc})") from exc
    if data is None:
        return None
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
        return _parse_state(files, path, state)
    except KeyError as exc:
        raise _unusable(path, job_id, f"lacks the key {exc}") from exc
    except (TypeError, ValueError, AttributeError) as exc:  # ConfigError is a ValueError
        raise _unusable(path, job_id, f"is corrupt ({exc})") from exc


def restore_job(job: Job, saved: SavedJob, store: CheckpointStore) -> None:
    """Load ``saved`` (read for ``job.job_id``, with ``job.config``) into a fresh ``job``.

    Raises:
        CheckpointError: the state was saved for another version of the dataset,
            or ``feedback.npz`` is unreadable or corrupt.
    """
    _check_dataset(job, saved)
    feedback = None if saved.feedback is None else _read_feedback(saved, job)
    if saved.feedback is None:
        store.feedback_names.pop(job.job_id, None)
    else:
        store.feedback_names[job.job_id] = saved.feedback
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


def _read_feedback(saved: SavedJob, job: Job) -> FeedbackTable | None:
    assert saved.feedback is not None
    path = saved.files.location.join(saved.feedback).url
    try:
        data = saved.files.read(saved.feedback)
        if data is None:
            return None  # none saved yet: the job had no feedback
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            return FeedbackTable.from_arrays(
                job.dataset.num_rows, dict(arrays), job.feedback.estimator
            )
    # A torn or foreign file: not a zip (pickle refused: ValueError), a bad zip, too short
    # (EOFError), a bare .npy (TypeError: not a context manager), bad array shapes.
    except (OSError, ValueError, TypeError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise _unusable(path, job.job_id, f"is corrupt ({type(exc).__name__}: {exc})") from exc


def _unusable(path: str, job_id: str, problem: str) -> CheckpointError:
    directory = path.rsplit("/", 1)[0]
    return CheckpointError(
        f"checkpoint {path} of job {truncated_repr(job_id)} {problem}; {recovery_hint(directory, job_id)}"
    )


def _parse_state(files: JobFiles, path: str, state: dict[str, Any]) -> SavedJob:
    """``state`` as typed values; raises KeyError, TypeError or ValueError if malformed."""
    config = JobConfig(**state["config"])
    rows = int(state["dataset_rows"])
    fingerprint = state.get("dataset_fingerprint")
    if fingerprint is not None and not isinstance(fingerprint, str):
        raise TypeError(f"dataset_fingerprint={truncated_repr(fingerprint)} must be a string")
    cursors = {int(rank): saved_position(p) for rank, p in state["cursors"].items()}
    for rank in cursors:
        if not 0 <= rank < config.world_size:
            raise ValueError(f"cursor of rank {rank}, but world_size={config.world_size}")
    plans = {
        int(epoch): [saved_positions(batch, rows) for batch in plan]
        for epoch, plan in state["plans"].items()
    }
    selections = [selection_from_json(item, rows) for item in state["selections"]]
    finished = frozenset(int(rank) for rank in state.get("finished_ranks", ()))
    feedback = state.get("feedback", FEEDBACK)
    if feedback is not None and (not isinstance(feedback, str) or "/" in feedback):
        raise TypeError(f"feedback={truncated_repr(feedback)} must be a file name")
    return SavedJob(
        files, path, config, rows, fingerprint, cursors, selections, plans, finished, feedback
    )
