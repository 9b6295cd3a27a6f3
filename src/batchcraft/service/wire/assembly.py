"""Response bytes assembled with one copy: rows are gathered straight into the message.

grpcio sends only `bytes`, and copies each message into its own buffer. A
batch's rows would otherwise be copied three times on the server: gathered
into a numpy array, joined into the response and copied by grpcio. Here a
message's parts may be `Gather` descriptions, and `join_parts` writes every
part, gathered rows included, into one uninitialised `bytes` object, which is
how CPython itself builds a `bytes` (allocate, fill, then publish): the
object is not visible to anything else until it is full.

That needs the C API (``PyBytes_FromStringAndSize(NULL, n)``) and the address
of a `bytes` object's data, both checked once at import on a probe; where
either is unavailable (another interpreter), `join_parts` gathers into numpy
arrays and joins them, with the same result.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True, eq=False)
class Gather:
    """Rows ``rows`` of the C-contiguous ``matrix`` (rows on the first axis), as bytes.

    Attributes:
        matrix: a C-contiguous array, one row per position.
        rows: the positions, in order; each in ``[0, len(matrix))``.
    """

    matrix: np.ndarray
    rows: np.ndarray

    def __post_init__(self) -> None:
        if not self.matrix.flags.c_contiguous:
            raise ValueError(f"gathered matrices must be C-contiguous, got {self.matrix.strides=}")

    @property
    def nbytes(self) -> int:
        return len(self.rows) * (self.matrix.nbytes // max(1, len(self.matrix)))

    def array(self) -> np.ndarray:
        """The rows as a new array.

        Raises:
            IndexError: a row is out of range.
        """
        self._check_rows()
        return self.matrix.take(self.rows, axis=0)

    def into(self, out: np.ndarray) -> None:
        """Write the rows into the bytes ``out`` (a writable uint8 array of `nbytes`).

        Raises:
            IndexError: a row is out of range.
        """
        self._check_rows()
        target = out.view(self.matrix.dtype).reshape((len(self.rows), *self.matrix.shape[1:]))
        # mode="clip" writes straight into ``out`` ("raise" buffers through a copy); the
        # range was checked above
        self.matrix.take(self.rows, axis=0, out=target, mode="clip")

    def _check_rows(self) -> None:
        """Negative rows are errors too: a position never counts from the end."""
        if len(self.rows) and (self.rows.min() < 0 or self.rows.max() >= len(self.matrix)):
            raise IndexError(f"rows outside [0, {len(self.matrix)}) in a gather")


def part_nbytes(part: Any) -> int:
    """Size in bytes of a message part: a `Gather` or any bytes-like object."""
    return part.nbytes if isinstance(part, Gather) else memoryview(part).nbytes


def join_parts(parts: list[Any]) -> bytes:
    """``parts`` (bytes-like objects and `Gather`) concatenated into one `bytes` object.

    Consecutive bytes-like parts (keys, lengths, headers: small) are joined
    first, so the number of writes is about the number of gathers.
    """
    if not any(isinstance(part, Gather) for part in parts):
        return b"".join(parts)
    segments: list[Any] = []
    pending: list[Any] = []
    for part in parts:
        if isinstance(part, Gather):
            if pending:
                segments.append(b"".join(pending))
                pending = []
            segments.append(part)
        else:
            pending.append(part)
    if pending:
        segments.append(b"".join(pending))
    if _NEW_BYTES is None:
        return b"".join([_materialised(segment) for segment in segments])
    sizes = [part_nbytes(segment) for segment in segments]
    data, out = _uninitialised(sum(sizes))
    try:
        offset = 0
        for segment, size in zip(segments, sizes, strict=True):
            if isinstance(segment, Gather):
                segment.into(out[offset : offset + size])
            else:
                out[offset : offset + size] = np.frombuffer(segment, np.uint8)
            offset += size
    except BaseException:
        del data, out  # never let a half-written object out, not even through a traceback
        raise
    return data


def _materialised(segment: Any) -> Any:
    return segment.array() if isinstance(segment, Gather) else segment


class _Memory:
    """Exposes ``size`` bytes at ``address`` to numpy (the `bytes` object stays referenced)."""

    def __init__(self, owner: bytes, address: int, size: int) -> None:
        self.owner = owner
        self.__array_interface__ = {
            "data": (address, False),
            "shape": (size,),
            "typestr": "|u1",
            "version": 3,
        }


def _uninitialised(size: int) -> tuple[bytes, np.ndarray]:
    """A new `bytes` object of ``size`` bytes with undefined content, and a writable view of it.

    Only the caller holds the object, and must fill every byte before sharing it.
    """
    assert _NEW_BYTES is not None
    data = _NEW_BYTES(None, size)
    return data, np.asarray(_Memory(data, id(data) + _DATA_OFFSET, size))


def _bytes_constructor() -> Any:
    """``PyBytes_FromStringAndSize`` with its own prototype, or None where the layout check fails."""
    try:
        prototype = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.c_void_p, ctypes.c_ssize_t)
        new = prototype(("PyBytes_FromStringAndSize", ctypes.pythonapi))
        probe = new(b"batchcraft layout probe", 23)
        if ctypes.string_at(id(probe) + _DATA_OFFSET, len(probe)) != b"batchcraft layout probe":
            return None
        return new
    except (AttributeError, OSError, TypeError, ValueError):
        return None


_DATA_OFFSET = bytes.__basicsize__ - 1  # CPython: the header, then the data (ob_sval[1])
_NEW_BYTES = _bytes_constructor()
