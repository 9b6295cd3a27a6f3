"""The provenance log is what `batchcraft.report.provenance` reads: one record per received batch."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from batchcraft.batcher.config import Position
from batchcraft.batcher.selections import RankBatch
from batchcraft.dataset.provenance import describe_format, numeric_info
from batchcraft.report.provenance import read_provenance
from batchcraft.service import BatchClient
from batchcraft.service.server.provenance import ProvenanceLog

pytestmark = pytest.mark.grpc


def test_a_served_epoch_reads_back_in_the_report(
    start_server, tmp_path: Path, kept_ids: list[str]
) -> None:  # type: ignore[no-untyped-def]
    address = start_server(provenance_dir=tmp_path / "provenance")
    served: dict[int, list[list[str]]] = {}
    for rank in range(2):
        client = BatchClient(
            address, "news", batch_size=6, rank=rank, world_size=2, columns=["id"], job="run-1"
        )
        with client:
            served[rank] = [list(batch["id"]) for batch in client]

    log = read_provenance(tmp_path / "provenance" / "news")
    assert log is not None and log.malformed == 0
    assert len(log.batches) == len(served[0]) + len(served[1])
    assert {b.job for b in log.batches} == {"run-1"}
    assert {b.selector for b in log.batches} == {"uniform"}
    for rank in range(2):
        mine = sorted((b for b in log.batches if b.rank == rank), key=lambda b: b.step)
        assert [b.size for b in mine] == [len(ids) for ids in served[rank]]
        assert [b.batch_id for b in mine][:1] == [f"run-1/e0/s0/r{rank}"]
        assert all(b.epoch == 0 and b.time is not None for b in mine)
        assert all(b.info["pool_size"] == 12 for b in mine[:-1])  # the selector's metrics
    table = log.served
    assert table is not None
    assert sorted(table.column("id").to_pylist()) == sorted(kept_ids)
    assert set(table.column("times").to_pylist()) == {1}  # every kept id once in the epoch


def test_records_follow_the_readers_format(tmp_path: Path) -> None:
    class Dataset:
        name = "news"
        ids = np.array(["a", "b", "c"], dtype=object)

        def ids_at(self, positions: np.ndarray) -> list[str]:
            return self.ids[positions].tolist()

    batch = RankBatch(
        Position(2, 5),
        1,
        np.array([2, 0]),
        None,
        {"selector": "jest", "learnability": np.float32(0.5), "rounds": 3, "bad": float("nan")},
        {},
    )
    log = ProvenanceLog(tmp_path)
    log.record("j/e2/s5/r1", "job/with:odd chars", Dataset(), batch, "jest")  # type: ignore[arg-type]
    log.close()
    (path,) = (tmp_path / "news").glob("*.jsonl")
    record = json.loads(path.read_text())
    format_ = describe_format()
    assert (
        set(format_["required"])
        <= set(record)
        <= set(format_["required"]) | set(format_["optional"])
    )
    assert record["ids"] == ["c", "a"] and record["selector"] == "jest"
    assert record["info"] == {"learnability": 0.5, "rounds": 3}


def test_a_torn_last_line_does_not_swallow_the_next_record(tmp_path: Path) -> None:
    log = ProvenanceLog(tmp_path)
    path = log.path_for("news", "run")
    path.parent.mkdir(parents=True)
    path.write_text('{"job": "run", "epo')  # a server killed mid-write

    class Dataset:
        name = "news"
        ids = np.array(["a"], dtype=object)

        def ids_at(self, positions: np.ndarray) -> list[str]:
            return self.ids[positions].tolist()

    batch = RankBatch(Position(0, 0), 0, np.array([0]), None, {}, {})
    log.record("run/e0/s0/r0", "run", Dataset(), batch, "uniform")  # type: ignore[arg-type]
    log.close()
    parsed = read_provenance(tmp_path / "news")
    assert parsed is not None and parsed.malformed == 1 and len(parsed.batches) == 1


def test_numeric_info_keeps_finite_numbers_only() -> None:
    info = {"a": 1, "b": np.int64(2), "c": True, "d": "x", "e": float("inf"), "f": 0.25}
    assert numeric_info(info) == {"a": 1, "b": 2, "f": 0.25}


def test_files_beyond_max_open_are_closed_and_reopened_for_append(tmp_path: Path) -> None:
    class Dataset:
        name = "news"
        ids = np.array(["a", "b"], dtype=object)

        def ids_at(self, positions: np.ndarray) -> list[str]:
            return self.ids[positions].tolist()

    def open_descriptors() -> int:
        return len(os.listdir("/proc/self/fd"))

    log = ProvenanceLog(tmp_path, max_open=3)
    before = open_descriptors()
    for step in range(4):
        for job in range(10):
            batch = RankBatch(Position(0, step), 0, np.array([step % 2]), None, {}, {})
            log.record(f"job{job}/e0/s{step}/r0", f"job{job}", Dataset(), batch, "uniform")  # type: ignore[arg-type]
        assert open_descriptors() - before <= 3
    log.close()
    assert open_descriptors() == before
    parsed = read_provenance(tmp_path / "news")
    assert parsed is not None and parsed.malformed == 0
    assert sorted((b.job, b.step) for b in parsed.batches) == sorted(
        (f"job{job}", step) for job in range(10) for step in range(4)
    )
