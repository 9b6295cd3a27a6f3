"""`check_same_config`: a job id keeps the configuration it was created with.

Apart from `batchcraft.batcher.config`, which the client imports: the client must load
nothing of the server's errors."""

from __future__ import annotations

from dataclasses import fields

from batchcraft.batcher.config import JobConfig
from batchcraft.batcher.errors import JobConflictError
from batchcraft.errors import truncated_repr

CONFIG_ECHO_LIMIT = 256
"""Characters of a job's configuration a conflict message shows."""


def check_same_config(
    job_id: str, existing: JobConfig, requested: JobConfig, where: str, *, hint: str = ""
) -> None:
    """Refuse ``requested`` unless it equals the config job ``job_id`` already has.

    Args:
        where: how the job has ``existing``, e.g. ``"is running"``.
        hint: what the user can do instead (appended to the message).

    Raises:
        JobConflictError: naming both configs and the fields that differ.
    """
    if requested == existing:
        return
    changed = ", ".join(
        f"{name} {truncated_repr(getattr(existing, name))} -> "
        f"{truncated_repr(getattr(requested, name))}"
        for name in (field.name for field in fields(JobConfig))
        if getattr(existing, name) != getattr(requested, name)
    )
    raise JobConflictError(
        f"job {truncated_repr(job_id)} {where} with {_shown(existing)}; got "
        f"{_shown(requested)} ({changed})" + (f"; {hint}" if hint else "")
    )


def _shown(config: JobConfig) -> str:
    """A config's canonical JSON as a message shows it: its parameters are the client's,
    so it is cut short like any echoed value (the fields that differ are listed apart)."""
    text = config.canonical_json()
    return text if len(text) <= CONFIG_ECHO_LIMIT else text[:CONFIG_ECHO_LIMIT] + "…"
