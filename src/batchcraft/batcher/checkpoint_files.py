"""Housekeeping of the directories a server writes: writable at start, no leftovers.

A server that cannot write its checkpoints would serve, then lose every job's
state (and fail each session on its provenance log): `check_writable` makes
it refuse to start instead, naming the directory. Checkpoint files are written
to a temporary beside them and renamed (`batchcraft._files.atomic_output`); a
process killed in between leaves the temporary behind, so a starting server
removes the stale ones (`remove_stale_temporaries`) and a job's own whenever a
server takes the job on (`remove_temporaries`).
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
from pathlib import Path

from batchcraft.errors import OutputError
from batchcraft.logs import log_event

LOG = logging.getLogger("batchcraft.batcher")

STALE_SECONDS = 60.0
"""A temporary untouched this long is a leftover: a live writer renames its temporary
within the time of one write and fsync."""
_TEMPORARY = re.compile(r"\.(state\.json|feedback\.npz|write-probe|lease\.\d+)\..+\.tmp")
"""Names `atomic_output` gives the temporaries of checkpoint and lease files, and the probe's."""


def check_writable(directory: Path, purpose: str) -> None:
    """Create ``directory`` if needed and a file in it, then remove the file.

    Raises:
        OutputError: naming ``purpose``, the directory and the operating system's reason.
    """
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=directory, prefix=".write-probe.", suffix=".tmp")
        os.close(handle)
        os.unlink(name)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise OutputError(f"{purpose} {directory} is not writable: {reason}") from None


def remove_temporaries(directory: Path, older_than: float = 0.0) -> list[Path]:
    """Remove the checkpoint temporaries directly in ``directory`` not modified in the last
    ``older_than`` seconds; the paths removed (a missing directory has none)."""
    now = time.time()
    removed = []
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return []
    for entry in entries:
        if not (_TEMPORARY.fullmatch(entry.name) and entry.is_file(follow_symlinks=False)):
            continue
        try:
            if now - entry.stat(follow_symlinks=False).st_mtime >= older_than:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except FileNotFoundError:
            continue  # removed meanwhile: by its writer's rename, or by another server
    return removed


def remove_stale_temporaries(root: Path, older_than: float = STALE_SECONDS) -> list[Path]:
    """Remove the stale temporaries of every job under the checkpoint directory ``root``
    (and stale write probes in ``root``); the paths removed.

    Only temporaries untouched for ``older_than`` seconds go: another server on the
    same directory may be writing its own right now.
    """
    removed = remove_temporaries(root, older_than)
    jobs = root / "jobs"
    if jobs.is_dir():
        for entry in os.scandir(jobs):
            if entry.is_dir(follow_symlinks=False):
                removed += remove_temporaries(Path(entry.path), older_than)
    return removed


def prepare_checkpoint_directory(root: Path) -> None:
    """At server start: refuse a checkpoint directory that cannot be written, and remove
    the stale temporaries of writers killed mid-save.

    Raises:
        OutputError: naming the directory.
    """
    check_writable(root, "checkpoint directory")
    removed = remove_stale_temporaries(root)
    if removed:
        log_event(
            LOG,
            logging.INFO,
            "checkpoint_leftovers_removed",
            directory=str(root),
            files=len(removed),
        )


def log_checkpoint_failure(job_id: str, path: Path | str, error: Exception) -> None:
    """Log that job ``job_id`` could not be saved in ``path`` (retried at the next interval).
    A disk problem explains itself; anything else is a bug worth its traceback."""
    log_event(
        LOG,
        logging.WARNING,
        "checkpoint_failed",
        exc_info=not isinstance(error, OSError),
        job=job_id,
        path=str(path),
        error=f"{type(error).__name__}: {error}",
    )
