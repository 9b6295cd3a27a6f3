"""How a session's batches are packed into messages.

Python gRPC pays a fixed cost per message (thread hand-offs and a completion
wait, about as much as sending 512 KiB), which packing pays once per message
instead of per batch: consecutive small batches travel together, up to the
client's ``max_batches_per_message``, about `PACK_BYTES` of payload, and the
credit available.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from batchcraft.service.server.rank_batches import Encoded
from batchcraft.service.wire.response import EncodedBatch

PACK_BYTES = 2 << 20
"""Packing stops before a message's payload passes this: 64 KiB batches travel up to
the client's ``max_batches_per_message`` to a message, 512 KiB batches three."""
HEADROOM = 64 << 10
"""Room for the response's header fields within the message size limit."""
FIELD_OVERHEAD = 32
"""Keys, lengths and alignment padding around one packed batch."""


def payload_limit(max_message_bytes: int) -> int:
    """The payload bytes one packed message may carry."""
    return min(PACK_BYTES, max_message_bytes - HEADROOM)


def group_size(
    max_batches_per_message: int, max_message_bytes: int, batch_bytes: int, credit: int
) -> int:
    """How many batches the next message carries: as many as fit the payload limit
    (judged by the latest batch's size ``batch_bytes``), the client's packing limit
    and the ``credit`` left; at least one."""
    by_size = payload_limit(max_message_bytes) // max(1, batch_bytes)
    return max(1, min(max_batches_per_message, by_size, credit))


def messages(group: Sequence[Encoded], max_message_bytes: int) -> Iterator[list[EncodedBatch]]:
    """``group`` cut into messages within the payload limit (a group is sized by the
    previous batch's payload; its batches may be larger). A batch always fits a message
    of its own: the encoder checked its size."""
    limit = payload_limit(max_message_bytes)
    message: list[EncodedBatch] = []
    size = 0
    for item in group:
        wire = item.wire
        cost = len(wire.header) + wire.nbytes + FIELD_OVERHEAD
        if message and size + cost > limit:
            yield message
            message, size = [], 0
        message.append(wire)
        size += cost
    yield message
