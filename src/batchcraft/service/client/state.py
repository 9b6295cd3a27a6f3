"""Resume tokens of `BatchClient` and `BatchDataset`: versioned, JSON-serialisable, checked.

A token records the job and where its stream (or streams) resume. Loading one
made for another job, another version or other job parameters is an error,
never a silent resume into other batches.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from batchcraft.batcher.config import JobConfig, Position
from batchcraft.errors import ConfigError

STATE_FORMAT = "batchcraft.BatchClient"
STATE_VERSION = 1
COMPATIBLE = (
    "dataset",
    "selector",
    "selector_params",
    "batch_size",
    "world_size",
    "seed",
    "last_batch",
    "scoring",
    "rank",
)
"""The parameters a client state must share with the client that loads it."""


def client_state(
    job: str | None, config: JobConfig, rank: int, following: Position | None
) -> dict[str, Any]:
    """The resume token of a client of ``job`` that resumes at ``following``."""
    parameters = asdict(config)
    parameters["rank"] = rank
    return {
        "format": STATE_FORMAT,
        "version": STATE_VERSION,
        "job": job,
        "config": parameters,
        "next": None if following is None else [following.epoch, following.step],
    }


def resume_point(
    state: Any, job: str | None, current: dict[str, Any]
) -> tuple[str | None, Position | None]:
    """The job and position a client whose own state is ``current`` resumes at from ``state``.

    Raises:
        ConfigError: ``state`` is not a client state of a supported version, is of
            another job, or was made for different parameters.
    """
    check_state(state, STATE_FORMAT, job)
    saved, mine = state["config"], current["config"]
    different = {
        name: (saved.get(name), mine[name]) for name in COMPATIBLE if saved.get(name) != mine[name]
    }
    if different:
        raise ConfigError(
            f"state was saved with different parameters (saved, current): {different}"
        )
    following = None if state["next"] is None else Position(*state["next"])
    return state["job"] or job, following


def check_state(state: Any, state_format: str, job: str | None) -> None:
    """Raise `ConfigError` unless ``state`` is a ``state_format`` resume token of this
    version and, when both name one, of the job ``job``."""
    if not isinstance(state, dict) or state.get("format") != state_format:
        raise ConfigError(f"not a {state_format} state: {str(state)[:80]!r}")
    if state.get("version") != STATE_VERSION:
        raise ConfigError(f"state version {state.get('version')!r}; supported: {STATE_VERSION}")
    saved = state.get("job")
    if job and saved and saved != job:
        raise ConfigError(f"the state is of job {saved!r}, this one's is {job!r}")
