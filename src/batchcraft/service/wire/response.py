"""Batch responses assembled around, and read from, Arrow IPC payloads without copies.

A `SessionResponse` carrying batches is plain protobuf on the wire, so any
protobuf client reads it. Building it with the protobuf runtime, though,
copies every payload three times (into the `Batch`, into the parent message
and into the serialised string) and costs two large allocations per batch;
reading it copies twice more. Protobuf's encoding is a concatenation of
fields, in any order, so the server serialises only the small header fields
of each `Batch` with the runtime and splices the IPC payload in with one
copy (`batchcraft.service.wire.assembly`); the client locates ``record_batch`` in
the received bytes and hands Arrow a zero-copy view of it. A `Batch.padding`
field puts every payload at an 8-byte aligned offset of the message, so the
arrays Arrow reads from it are aligned numpy/torch-ready views.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from batchcraft.api.v1 import batch_service_pb2 as pb
from batchcraft.service.wire.assembly import join_parts, part_nbytes

_LEN = 2  # protobuf wire type of length-delimited fields
_RESPONSE_BATCH = 2  # SessionResponse.batch
_RESPONSE_BATCHES = 4  # SessionResponse.batches
_BATCHES_BATCH = 1  # Batches.batches
_RECORD_BATCH = 5  # Batch.record_batch
_PADDING = 11  # Batch.padding
ALIGNMENT = 8


@dataclass(frozen=True)
class EncodedBatch:
    """A batch ready to send: its serialised header fields and its Arrow IPC payload.

    Attributes:
        header: a serialised `pb.Batch` without ``record_batch``.
        payload: the IPC record-batch message, in parts joined in order: bytes-like
            objects and `batchcraft.service.wire.assembly.Gather` rows.
        nbytes: payload size in bytes.
    """

    header: bytes
    payload: tuple[Any, ...]
    nbytes: int


def encode_batch(header: pb.Batch, payload: Any) -> EncodedBatch:
    """Pair ``header`` (a `pb.Batch` without ``record_batch``) with its IPC ``payload``:
    one bytes-like object, or a list of parts (see `batchcraft.service.wire.ipc`)."""
    parts = tuple(payload) if isinstance(payload, list) else (payload,)
    return EncodedBatch(header.SerializeToString(), parts, sum(map(part_nbytes, parts)))


def response_bytes(batches: Sequence[EncodedBatch], *, packed: bool) -> bytes:
    """One serialised `SessionResponse`: ``batch`` (one) or ``batches`` (``packed``).

    Each payload is copied once, into the returned bytes, at an aligned offset
    (gathered rows straight from the dataset: `batchcraft.service.wire.assembly`).
    Every length is a minimal varint, as the protobuf runtime would write it.
    """
    if not packed and len(batches) != 1:
        raise ValueError(f"an unpacked response holds one batch, got {len(batches)}")
    outer = _key(_RESPONSE_BATCHES if packed else _RESPONSE_BATCH)
    width = len(_varint(sum(len(b.header) + b.nbytes + 32 for b in batches)))
    for _ in range(4):  # the body length depends on the paddings, which depend on its width
        parts, body_length = _layout(batches, len(outer) + width, packed)
        if len(_varint(body_length)) == width:
            return join_parts([outer, _varint(body_length), *parts])
        width = len(_varint(body_length))
    raise AssertionError("the response layout did not converge")


def _layout(batches: Sequence[EncodedBatch], offset: int, packed: bool) -> tuple[list[Any], int]:
    """The parts of the response body starting at ``offset``, and the body length."""
    parts: list[Any] = []
    start = offset
    inner_key = _key(_BATCHES_BATCH) if packed else b""
    for batch in batches:
        tail = _key(_RECORD_BATCH) + _varint(batch.nbytes)
        base = len(batch.header) + len(tail) + batch.nbytes
        width = len(_varint(base)) if packed else 0
        for _ in range(4):  # as above, for the length of one packed Batch
            header_start = offset + len(inner_key) + width
            padding = _padding_field(header_start + len(batch.header) + len(tail))
            length = base + len(padding)
            if not packed or len(_varint(length)) == width:
                break
            width = len(_varint(length))
        inner_prefix = inner_key + _varint(length) if packed else b""
        parts += [inner_prefix, batch.header, padding, tail, *batch.payload]
        offset += len(inner_prefix) + length
    return parts, offset - start


@dataclass(frozen=True)
class BatchView:
    """A received batch: its header fields and a zero-copy view of its IPC payload."""

    header: pb.Batch
    payload: memoryview


def read_response(data: bytes) -> pb.SessionResponse | list[BatchView]:
    """Parse a serialised `SessionResponse`: batches as views, anything else as a message."""
    view = memoryview(data)
    if len(view) > 0:
        key, position = _read_varint(view, 0)
        if key in (_key_int(_RESPONSE_BATCH), _key_int(_RESPONSE_BATCHES)):
            length, position = _read_varint(view, position)
            if position + length == len(view):
                body = view[position:]
                if key == _key_int(_RESPONSE_BATCH):
                    return [_read_batch(body)]
                return [_read_batch(part) for part in _length_delimited(body, _BATCHES_BATCH)]
    response = pb.SessionResponse.FromString(data)
    kind = response.WhichOneof("kind")
    if kind == "batch":  # batches in another field order (another server): copy, do not drop
        return [_view_of(response.batch)]
    if kind == "batches":
        return [_view_of(batch) for batch in response.batches.batches]
    return response


def _view_of(batch: pb.Batch) -> BatchView:
    payload = memoryview(batch.record_batch)
    batch.ClearField("record_batch")
    return BatchView(batch, payload)


def _read_batch(body: memoryview) -> BatchView:
    """Split a serialised `Batch` into its header message and its record_batch view."""
    header_parts: list[memoryview] = []
    payload = memoryview(b"")
    position = 0
    size = len(body)
    while position < size:
        start = position
        key = body[position]  # one-byte keys and lengths inline: this runs per field per batch
        if key < 0x80:
            position += 1
        else:
            key, position = _read_varint(body, position)
        field, wire_type = key >> 3, key & 7
        if wire_type == _LEN:
            length = body[position] if position < size else 0x80
            if length < 0x80:
                position += 1
            else:
                length, position = _read_varint(body, position)
            end = position + length
            if field == _RECORD_BATCH:
                payload = body[position:end]
            elif field != _PADDING:
                header_parts.append(body[start:end])
            position = end
        else:
            position = _skip(body, position, wire_type)
            header_parts.append(body[start:position])
    header = pb.Batch.FromString(b"".join(header_parts))
    return BatchView(header, payload)


def _length_delimited(body: memoryview, wanted: int) -> list[memoryview]:
    """The values of the length-delimited field ``wanted`` of a serialised message."""
    values = []
    position = 0
    while position < len(body):
        key, position = _read_varint(body, position)
        if key & 7 != _LEN:
            position = _skip(body, position, key & 7)
            continue
        length, position = _read_varint(body, position)
        if key >> 3 == wanted:
            values.append(body[position : position + length])
        position += length
    return values


def _skip(body: memoryview, position: int, wire_type: int) -> int:
    if wire_type == 0:
        return _read_varint(body, position)[1]
    if wire_type == 1:
        return position + 8
    if wire_type == 5:
        return position + 4
    raise ValueError(f"unsupported protobuf wire type {wire_type} in a batch response")


def _read_varint(data: memoryview, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if position >= len(data):
            raise ValueError("truncated varint in a batch response")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, position
        shift += 7


def _key_int(field: int) -> int:
    return field << 3 | _LEN


def _key(field: int) -> bytes:
    return _varint(_key_int(field))


def _varint(value: int) -> bytes:
    if value < len(_SMALL_VARINTS):
        return _SMALL_VARINTS[value]
    return _encode_varint(value)


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_SMALL_VARINTS = [_encode_varint(value) for value in range(1 << 14)]  # keys, lengths, paddings


def _padding_field(payload_start: int) -> bytes:
    """A `Batch.padding` field that moves a payload at ``payload_start`` to an aligned offset.

    The field itself (key, length, zeros) is at least 2 bytes long, so it may
    move the payload to the boundary after next.
    """
    needed = -payload_start % ALIGNMENT
    if needed == 0:
        return b""
    if needed < 2:
        needed += ALIGNMENT
    return _key(_PADDING) + _varint(needed - 2) + bytes(needed - 2)
