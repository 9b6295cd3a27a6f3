"""IPC messages assembled from a batch's own buffers read back as the batch."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from batchcraft.service.wire.assembly import Gather, join_parts
from batchcraft.service.wire.codec import NumpyConverter
from batchcraft.service.wire.ipc import IpcParts


def read(parts: list, schema: pa.Schema) -> pa.RecordBatch:
    return pa.ipc.read_record_batch(pa.py_buffer(join_parts(parts)), schema)


def fixed_width_batch(rows: int = 96) -> pa.RecordBatch:
    rng = np.random.default_rng(0)
    return pa.RecordBatch.from_arrays(
        [
            pa.FixedSizeListArray.from_arrays(pa.array(rng.random(rows * 5, np.float32)), 5),
            pa.FixedSizeListArray.from_arrays(pa.array(np.arange(rows * 3, dtype=np.int16)), 3),
            pa.array(np.arange(rows, dtype=np.int8)),
            pa.array(rng.random(rows)),
        ],
        ["embedding", "tokens", "label", "loss"],
    )


def test_every_slice_reads_back_equal_and_later_batches_skip_serialisation() -> None:
    batch = fixed_width_batch()
    parts = IpcParts(batch.schema, min_bytes=0)
    for offset, length in [(3, 7), (0, 7), (10, 7), (0, 32), (32, 32), (64, 32), (5, 20), (90, 6)]:
        piece = batch.slice(offset, length)
        assert read(parts.parts(piece), batch.schema).equals(piece), (offset, length)
    # The first batch of a row count is serialised; the next ones are spliced from views.
    assert len(parts.parts(batch.slice(1, 32))) > 1


def test_a_first_batch_holding_nan_still_teaches_its_row_count() -> None:
    # NaN != NaN: a check by value equality would never splice this row count.
    clean = fixed_width_batch()
    embedding = clean.column(0).values.to_numpy().copy()
    embedding[[3, 11]] = np.nan
    loss = clean.column(3).to_numpy().copy()
    loss[0] = np.nan
    with_nan = pa.RecordBatch.from_arrays(
        [
            pa.FixedSizeListArray.from_arrays(pa.array(embedding), 5),
            clean.column(1),
            clean.column(2),
            pa.array(loss),
        ],
        clean.schema.names,
    )
    parts = IpcParts(clean.schema, min_bytes=0)
    assert len(parts.parts(with_nan.slice(0, 32))) == 1  # learned from this one
    for piece in (with_nan.slice(0, 32), clean.slice(32, 32)):
        spliced = parts.parts(piece)
        assert len(spliced) > 1  # spliced, not serialised
        back = read(spliced, clean.schema)
        for got, want in zip(back.columns, piece.columns, strict=True):
            got_values = got.flatten() if isinstance(got, pa.FixedSizeListArray) else got
            want_values = want.flatten() if isinstance(want, pa.FixedSizeListArray) else want
            np.testing.assert_array_equal(got_values.to_numpy(), want_values.to_numpy())


def test_a_row_count_whose_spliced_message_differs_is_always_serialised() -> None:
    class Mismatched(IpcParts):
        def _body(self, batch: pa.RecordBatch) -> list[object]:
            body = [bytes(part) for part in super()._body(batch)]
            body[0] = b"\x00" + body[0][1:]  # what a layout this module gets wrong would do
            return body

    batch = fixed_width_batch()
    parts = Mismatched(batch.schema, min_bytes=0)
    for offset in (0, 32, 64):
        piece = batch.slice(offset, 32)
        got = parts.parts(piece)
        assert len(got) == 1 and read(got, batch.schema).equals(piece)
    assert parts.spliced(32, [np.zeros((32, 5), np.float32)]) is None


def test_small_batches_are_serialised() -> None:
    batch = fixed_width_batch()
    parts = IpcParts(batch.schema, min_bytes=batch.nbytes + 1)
    for _ in range(2):
        assert len(parts.parts(batch)) == 1


@pytest.mark.parametrize(
    "column",
    [
        pa.array(["a", "bb", None, "d"] * 8),
        pa.array([1.0, None, 3.0, 4.0] * 8),
        pa.FixedSizeListArray.from_arrays(pa.array([1.0, None] * 32, pa.float32()), 2),
        pa.FixedSizeListArray.from_arrays(
            pa.FixedSizeListArray.from_arrays(pa.array(np.arange(64, dtype=np.float32)), 1), 2
        ),
    ],
    ids=["strings", "null-floats", "null-in-lists", "nested-lists"],
)
def test_columns_with_nulls_or_variable_width_are_serialised(column: pa.Array) -> None:
    batch = pa.RecordBatch.from_arrays([column], ["value"])
    parts = IpcParts(batch.schema, min_bytes=0)
    for _ in range(2):
        got = parts.parts(batch)
        assert len(got) == 1 and read(got, batch.schema).equals(batch)


def test_numpy_gathers_splice_into_the_same_message() -> None:
    batch = fixed_width_batch()
    views = [_numpy_view(column) for column in batch.columns]
    parts = IpcParts(batch.schema, min_bytes=0)
    rows = np.array([5, 1, 90, 3, 3, 47, 0, 12])
    piece = batch.take(pa.array(rows))
    assert parts.spliced(len(rows), [v[rows] for v in views]) is None  # not learned yet
    parts.parts(piece)
    other = np.array([7, 7, 2, 95, 60, 11, 4, 8])
    got = parts.spliced(len(other), [np.take(v, other, axis=0) for v in views])
    assert got is not None and read(got, batch.schema).equals(batch.take(pa.array(other)))
    # rows still to gather, written straight into the response, make the same message
    deferred = parts.spliced(len(other), [Gather(v, other) for v in views])
    assert deferred is not None and join_parts(deferred) == join_parts(got)


def _numpy_view(column: pa.Array) -> np.ndarray:
    if isinstance(column, pa.FixedSizeListArray):
        return column.values.to_numpy().reshape(len(column), -1)
    return column.to_numpy()


def test_the_client_reads_spliced_messages_as_views_equal_to_arrows_reading() -> None:
    batch = fixed_width_batch()
    converter = NumpyConverter(batch.schema)
    parts = IpcParts(batch.schema, min_bytes=0)
    for offset, length in [(0, 16), (16, 16), (40, 16), (3, 5), (90, 6)]:
        piece = batch.slice(offset, length)
        message = b"".join(bytes(p) for p in parts.parts(piece))
        got = converter.read(message)
        expected = NumpyConverter(batch.schema)(piece)
        assert list(got) == list(expected)
        for name in expected:
            assert np.array_equal(got[name], expected[name]), (offset, length, name)
            assert got[name].dtype == expected[name].dtype
            assert np.shares_memory(got[name], np.frombuffer(message, np.uint8))


@pytest.mark.parametrize(
    "column",
    [pa.array(["a", "bb", None, "d"] * 8), pa.array([1.0, None, 3.0, 4.0] * 8)],
    ids=["strings", "null-floats"],
)
def test_the_client_reads_other_messages_with_arrow(column: pa.Array) -> None:
    batch = pa.RecordBatch.from_arrays([column, pa.array(np.arange(32.0))], ["value", "x"])
    converter = NumpyConverter(batch.schema)
    for _ in range(2):
        got = converter.read(batch.serialize())
        assert got["value"] == column.to_pylist()
        assert np.array_equal(got["x"], np.arange(32.0))
