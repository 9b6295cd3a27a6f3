"""Errors of the batcher, all rooted in `batchcraft.errors`.

The service maps them to gRPC status codes (see `batchcraft.service.status`).
"""

from __future__ import annotations

from batchcraft.errors import BatchcraftError, ConfigError, DatasetError


class UnknownDatasetError(DatasetError, KeyError):
    """A dataset name is not registered; the message lists the registered names."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class JobConflictError(BatchcraftError):
    """A job id is already in use with different parameters."""


class CheckpointError(DatasetError):
    """A job's checkpoint cannot be restored: unreadable, corrupt, or saved for another
    version of the dataset. The message names the file and how to start the job afresh."""


class CheckpointSaveError(BatchcraftError):
    """Jobs could not be checkpointed; the message names each job, its directory and error."""


class FeedbackError(ConfigError):
    """Trainer feedback names unknown ids or columns, or has the wrong shape."""


class SessionTimeoutError(BatchcraftError):
    """A synchronous scoring round waited too long for the other ranks."""


class JobMovedError(BatchcraftError):
    """Another replica holds the job's lease (`batchcraft.batcher.leases`): its sessions
    go there. ``address`` is where clients reach it ("" if unknown); ``expires_in`` the
    seconds its lease has left unless renewed."""

    def __init__(self, job_id: str, address: str, expires_in: float) -> None:
        self.job_id = job_id
        self.address = address
        self.expires_in = expires_in
        where = f"the replica at {address}" if address else "another replica"
        super().__init__(
            f"job {job_id!r} is served by {where} (its lease has {expires_in:.1f} s left "
            "unless renewed); a client follows it there"
        )
