"""Responses assembled with gathered rows written straight into them."""

from __future__ import annotations

import numpy as np
import pytest

from batchcraft.service.wire import assembly
from batchcraft.service.wire.assembly import Gather, join_parts, part_nbytes

MATRICES = {
    "float32-rows": np.random.default_rng(0).random((50, 7), dtype=np.float32),
    "int16-rows": np.arange(50 * 3, dtype=np.int16).reshape(50, 3),
    "int8": np.arange(50, dtype=np.int8),
    "float64": np.random.default_rng(1).random(50),
}


def expected_bytes(parts: list[object]) -> bytes:
    return b"".join(
        p.matrix[p.rows].tobytes() if isinstance(p, Gather) else bytes(p)  # type: ignore[arg-type]
        for p in parts
    )


@pytest.fixture(params=["uninitialised-bytes", "join-fallback"])
def writer(request, monkeypatch) -> str:  # type: ignore[no-untyped-def]
    if request.param == "join-fallback":
        monkeypatch.setattr(assembly, "_NEW_BYTES", None)
    else:
        assert assembly._NEW_BYTES is not None, "CPython: the single-copy path must be on"
    return str(request.param)


@pytest.mark.parametrize("seed", range(8))
def test_gathered_parts_join_to_the_rows_bytes(writer: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    parts: list[object] = []
    for _ in range(int(rng.integers(1, 7))):
        if rng.random() < 0.5:
            parts.append(rng.bytes(int(rng.integers(0, 40))))
        matrix = list(MATRICES.values())[int(rng.integers(len(MATRICES)))]
        parts.append(Gather(matrix, rng.integers(0, len(matrix), int(rng.integers(0, 30)))))
    data = join_parts(parts)
    assert type(data) is bytes
    assert data == expected_bytes(parts)
    assert len(data) == sum(part_nbytes(p) for p in parts)


def test_the_response_is_a_copy_not_a_view_of_the_rows(writer: str) -> None:
    matrix = np.arange(40, dtype=np.float32).reshape(10, 4)
    data = join_parts([b"head", Gather(matrix, np.array([3, 1]))])
    before = bytes(data)
    matrix[:] = -1
    assert data == before == b"head" + np.float32([12, 13, 14, 15, 4, 5, 6, 7]).tobytes()


def test_each_response_is_a_new_object(writer: str) -> None:
    matrix = np.arange(12, dtype=np.int32).reshape(6, 2)
    first = join_parts([Gather(matrix, np.array([0, 5]))])
    second = join_parts([Gather(matrix, np.array([2]))])
    assert first == np.int32([0, 1, 10, 11]).tobytes() and second == np.int32([4, 5]).tobytes()


def test_parts_without_gathers_are_joined(writer: str) -> None:
    assert join_parts([b"a", memoryview(b"bc"), np.uint8([100])]) == b"abcd"


@pytest.mark.parametrize("rows", [[0, 6], [-1, 2], [3, 100]])
def test_rows_out_of_range_raise_instead_of_sending_other_rows(writer: str, rows) -> None:  # type: ignore[no-untyped-def]
    matrix = np.arange(12, dtype=np.int32).reshape(6, 2)
    with pytest.raises(IndexError):
        join_parts([b"head", Gather(matrix, np.array(rows))])


def test_only_c_contiguous_matrices_are_gathered() -> None:
    strided = np.ones((10, 3))[::5]
    with pytest.raises(ValueError, match="C-contiguous"):
        Gather(strided, np.array([0, 1]))
