"""Arrow IPC record-batch messages as a list of parts, without serialising into a new buffer.

``RecordBatch.serialize()`` copies every column into one fresh buffer, and the
response that carries it (`batchcraft.service.wire.response`) copies it once more. An
IPC message is a metadata prefix followed by the column buffers, each padded
to 8 bytes; for a batch whose columns are fixed-width and null-free the
prefix depends only on the row count. `IpcParts` serialises the first batch
of each row count normally, checks that its prefix plus the batch's own
buffers make the same message, and from then on hands out
``[prefix, buffer, padding, ...]`` (views, no copy) for the response to join.
Any other batch (nulls, variable-width columns, under `SPLICE_MIN_BYTES`, where
the copy costs less than the Python that assembles the parts), or a row count
whose check failed, takes ``serialize()``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from batchcraft.dataset.arrays import is_byte_numeric
from batchcraft.service.wire.assembly import Gather

_ALIGNMENT = 8
SPLICE_MIN_BYTES = 128 << 10
_ZEROS = bytes(_ALIGNMENT)


class IpcParts:
    """Encodes record batches of one schema as IPC message parts.

    Args:
        schema: the schema of every batch passed to `parts`.
        min_bytes: smaller batches are serialised: copying them costs less than
            assembling their parts in Python.
    """

    def __init__(self, schema: pa.Schema, min_bytes: int = SPLICE_MIN_BYTES) -> None:
        self._widths = [_fixed_width(field.type) for field in schema]
        self._eligible = all(width is not None for width in self._widths)
        self._row_bytes = sum(_row_bytes(field.type) for field in schema)
        self._min_bytes = min_bytes
        self._prefixes: dict[int, bytes | None] = {}

    def splices(self, num_rows: int) -> bool:
        """Whether batches of ``num_rows`` null-free rows are spliced rather than serialised."""
        return self._eligible and num_rows * self._row_bytes >= self._min_bytes

    def spliced(self, num_rows: int, columns: list[np.ndarray | Gather]) -> list[Any] | None:
        """The IPC message of a null-free batch whose ``columns`` are numpy arrays (rows
        on the first axis, C-contiguous) or rows still to gather (`Gather`, written
        straight into the response), or None until `parts` has learned the prefix of
        ``num_rows`` rows and checked that it fits."""
        prefix = self._prefixes.get(num_rows)
        if prefix is None or not self.splices(num_rows):
            return None
        parts: list[Any] = [prefix]
        for column in columns:
            size = column.nbytes
            parts.append(
                column if isinstance(column, Gather) else column.reshape(-1).view(np.uint8)
            )
            if size % _ALIGNMENT:
                parts.append(_ZEROS[: -size % _ALIGNMENT])
        return parts

    def parts(self, batch: pa.RecordBatch) -> list[Any]:
        """The IPC message of ``batch`` as bytes-like parts (read like ``batch.serialize()``)."""
        if not self.splices(batch.num_rows) or any(_has_nulls(c) for c in batch.columns):
            return [batch.serialize()]
        rows = batch.num_rows
        if rows not in self._prefixes:
            return [self._learn(batch)]
        prefix = self._prefixes[rows]
        if prefix is None:
            return [batch.serialize()]
        return [prefix, *self._body(batch)]

    def _learn(self, batch: pa.RecordBatch) -> pa.Buffer:
        """Serialise ``batch``; keep its prefix if prefix + buffers is the same message.

        Arrow may fill a buffer's padding with the bytes that follow it in
        memory where this module writes zeros, so the check is on layout (same
        size) and content (decodes to the same column bytes, NaNs included),
        not on every byte. The
        prefix describes only sizes, which depend on nothing but the row
        count, so it then fits every null-free batch of that count.
        """
        serialized = batch.serialize()
        body_size = pa.ipc.read_message(serialized).body.size
        prefix = serialized.to_pybytes()[: serialized.size - body_size]
        spliced = b"".join([prefix, *self._body(batch)])
        fits = len(spliced) == serialized.size and _same_values(
            batch, pa.ipc.read_record_batch(pa.py_buffer(spliced), batch.schema)
        )
        self._prefixes[batch.num_rows] = prefix if fits else None
        return serialized

    def _body(self, batch: pa.RecordBatch) -> list[Any]:
        parts: list[Any] = []
        for column, width in zip(batch.columns, self._widths, strict=True):
            assert width is not None
            if isinstance(column, pa.FixedSizeListArray):
                values = column.values  # the whole child: the parent's offset is not applied
                first = values.offset + column.offset * width
            else:
                values, first = column, column.offset
            item = values.type.bit_width // 8
            size = len(column) * width * item
            parts.append(values.buffers()[1].slice(first * item, size))
            if size % _ALIGNMENT:
                parts.append(_ZEROS[: -size % _ALIGNMENT])
        return parts


def _same_values(one: pa.RecordBatch, other: pa.RecordBatch) -> bool:
    """Whether two null-free fixed-width batches hold the same bytes, column by column
    (not `RecordBatch.equals`, for which a NaN differs from itself)."""
    return all(
        np.array_equal(_value_bytes(a), _value_bytes(b))
        for a, b in zip(one.columns, other.columns, strict=True)
    )


def _value_bytes(column: pa.Array) -> np.ndarray:
    values = column.flatten() if isinstance(column, pa.FixedSizeListArray) else column
    return values.to_numpy(zero_copy_only=False).view(np.uint8)


def _has_nulls(column: pa.Array) -> bool:
    if column.null_count:
        return True
    return isinstance(column, pa.FixedSizeListArray) and column.values.null_count > 0


def _row_bytes(kind: pa.DataType) -> int:
    """Bytes per row of a fixed-width column (0 for other columns)."""
    width = _fixed_width(kind)
    if width is None:
        return 0
    inner = kind.value_type if pa.types.is_fixed_size_list(kind) else kind
    return width * inner.bit_width // 8


def _fixed_width(kind: pa.DataType) -> int | None:
    """Values per row of a byte-aligned numeric column or fixed-size list of one; else None."""
    if pa.types.is_fixed_size_list(kind):  # of numbers only (nested lists are serialised)
        return kind.list_size if is_byte_numeric(kind.value_type) else None
    if is_byte_numeric(kind):
        return 1
    return None
