"""The one place where batchcraft errors become gRPC status codes.

Messages name what was wrong; values a client chose are shown cut short where
they are raised (`batchcraft.errors.truncated_repr`), and `abort` cuts any message
to `MAX_STATUS_MESSAGE` characters: gRPC carries it in a trailer, and a trailer
above its metadata limit turns the status into RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import logging

import grpc

from batchcraft.batcher.errors import (
    JobConflictError,
    JobMovedError,
    SessionTimeoutError,
    UnknownDatasetError,
)
from batchcraft.errors import BatchcraftError, ConfigError, DatasetError, StorageError
from batchcraft.logs import log_event
from batchcraft.service.wire.channel import (
    JOB_OWNER_KEY,
    RETRY_AFTER_KEY,
    SESSION_END_KEY,
    SESSION_IDLE,
    SESSION_MOVED,
)

LOG = logging.getLogger("batchcraft.service")
MAX_STATUS_MESSAGE = 1024
"""Characters of a status message sent to the client (gRPC's metadata limit is 8 KiB)."""


class MessageTooLargeError(BatchcraftError):
    """A batch does not fit the configured maximum message size."""


class AuthenticationError(BatchcraftError):
    """A request carries no bearer token or a wrong one."""


class SessionLimitError(BatchcraftError):
    """The server already runs as many sessions as it has threads for."""


class SessionIdleError(BatchcraftError):
    """A session's client sent nothing for the idle timeout while the server waited on it
    (UNAVAILABLE, marked `SESSION_IDLE` in the trailing metadata: resume to go on)."""


class PositionOutOfRangeError(ConfigError):
    """A position a client sent lies beyond the range the server serves."""


def status_for(error: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status code and message a client receives for ``error``."""
    if isinstance(error, UnknownDatasetError):
        return grpc.StatusCode.NOT_FOUND, str(error)
    if isinstance(error, PositionOutOfRangeError):
        return grpc.StatusCode.OUT_OF_RANGE, str(error)
    if isinstance(error, ConfigError | ValueError) and isinstance(error, BatchcraftError):
        return grpc.StatusCode.INVALID_ARGUMENT, str(error)
    if isinstance(error, AuthenticationError):
        return grpc.StatusCode.UNAUTHENTICATED, str(error)
    if isinstance(error, MessageTooLargeError | SessionLimitError):
        return grpc.StatusCode.RESOURCE_EXHAUSTED, str(error)
    if isinstance(error, JobConflictError | DatasetError):
        return grpc.StatusCode.FAILED_PRECONDITION, str(error)
    if isinstance(error, SessionTimeoutError):
        return grpc.StatusCode.ABORTED, str(error)
    # a checkpoint store out of reach is an outage: the client's reconnects may outlast it
    if isinstance(error, SessionIdleError | JobMovedError | StorageError):
        return grpc.StatusCode.UNAVAILABLE, str(error)
    if isinstance(error, BatchcraftError):
        return grpc.StatusCode.INTERNAL, str(error)
    log_event(
        LOG,
        logging.ERROR,
        "internal_error",
        exc_info=error,
        error=f"{type(error).__name__}: {error}",
    )
    return grpc.StatusCode.INTERNAL, f"internal error: {type(error).__name__}: {error}"


def abort(context: grpc.ServicerContext, error: BaseException) -> None:
    """End the RPC with the status of ``error`` (raises, as `grpc.ServicerContext.abort` does)."""
    code, message = status_for(error)
    if isinstance(error, SessionIdleError):
        context.set_trailing_metadata(((SESSION_END_KEY, SESSION_IDLE),))
    elif isinstance(error, JobMovedError):  # a redirect: the client resumes at the owner
        left = f"{error.expires_in:.3f}"
        moved = (SESSION_END_KEY, SESSION_MOVED), (JOB_OWNER_KEY, error.address)
        context.set_trailing_metadata((*moved, (RETRY_AFTER_KEY, left)))
    if len(message) > MAX_STATUS_MESSAGE:
        message = message[:MAX_STATUS_MESSAGE] + "…"
    context.abort(code, message)
