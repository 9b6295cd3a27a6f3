"""What both ends of a channel agree on: the service's full name and the message size options."""

from __future__ import annotations

from batchcraft.api.v1 import batch_service_pb2 as pb

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["BatchService"].full_name
SESSION_METHOD = f"/{SERVICE_NAME}/Session"
SESSION_END_KEY = "batchcraft-session-end"
"""Trailing metadata of a session the server ended for a reason the client can act on."""
SESSION_IDLE = "idle"
"""`SESSION_END_KEY`'s value when the client sent nothing for the server's idle timeout:
it resumes where its received batches end (the server holds nothing for it)."""
SESSION_MOVED = "moved"
"""`SESSION_END_KEY`'s value when another replica owns the session's job (its lease,
`batchcraft.batcher.leases`): the client resumes there, at `JOB_OWNER_KEY`."""
JOB_OWNER_KEY = "batchcraft-job-owner"
"""Trailing metadata of a moved session: ``host:port`` of the replica that owns the job
(empty when there is none to go to: the client tries its own target again after
`RETRY_AFTER_KEY` seconds, when the job's lease expires)."""
RETRY_AFTER_KEY = "batchcraft-retry-after"
"""Trailing metadata of a moved session: seconds the owner's lease has left."""


def channel_options(max_message_bytes: int) -> list[tuple[str, int]]:
    """Message size limits, set explicitly on both sides (the default is 4 MiB)."""
    return [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
    ]
