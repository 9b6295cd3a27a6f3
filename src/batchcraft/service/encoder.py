"""`BatchEncoder`: one rank's batches of a job, selected, gathered and IPC-encoded for the wire.

A large fixed-width batch's IPC message is its cached prefix followed by
its rows, which are gathered from the dataset's column views only when the
response is assembled, straight into it (`batchcraft.service.assembly`).
Any other batch is gathered by Arrow (one gather for all the batches of a
message) and serialised (`batchcraft.service.ipc`). The protobuf runtime
only serialises the few header fields; `batchcraft.service.wire` joins it
all into the response with a single copy.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from batchcraft._files import json_default
from batchcraft.api.v1 import batch_service_pb2 as pb
from batchcraft.batcher.config import Position
from batchcraft.batcher.job import Job, RankBatch
from batchcraft.dataset import provenance
from batchcraft.service import codec
from batchcraft.service.assembly import Gather
from batchcraft.service.ipc import IpcParts
from batchcraft.service.status import MessageTooLargeError
from batchcraft.service.wire import EncodedBatch, encode_batch


@dataclass(frozen=True)
class Encoded:
    """A batch ready for the wire, with the selection it came from."""

    batch_id: str
    batch: RankBatch
    wire: EncodedBatch
    following: Position
    selector: str


class BatchEncoder:
    """Encodes rank ``rank``'s batch of ``job`` at any position.

    Args:
        job: the job whose selections are served.
        rank: the stream's rank.
        columns: the columns sent.
        max_payload_bytes: the largest payload that fits a message.
    """

    def __init__(self, job: Job, rank: int, columns: list[str], max_payload_bytes: int) -> None:
        self.job = job
        self.rank = rank
        self.columns = columns
        self.max_payload_bytes = max_payload_bytes
        self.selection_seconds = 0.0  # of the latest `encode` call's selections
        self._ipc = IpcParts(job.dataset.table.select(columns).schema)
        self._matrices = job.dataset.matrices(columns)

    def encode(self, positions: list[Position]) -> list[Encoded]:
        """Select, gather and encode the batches at ``positions`` (consecutive steps).

        Large null-free fixed-width batches are spliced behind their IPC
        prefix (`IpcParts.spliced`) as rows to gather from the dataset's
        column views into the response. Other batches are gathered by Arrow,
        all of them at once, and each is serialised from a zero-copy slice of
        the gather: for small packed batches the per-call overhead of a
        gather would otherwise dominate.
        """
        started = time.perf_counter()
        batches = [self.job.rank_batch(position, self.rank) for position in positions]
        self.selection_seconds = time.perf_counter() - started
        if self._matrices is not None and all(self._ipc.splices(len(b.positions)) for b in batches):
            payloads = self._numpy_payloads(batches, self._matrices)
        else:
            payloads = self._arrow_payloads(batches)
        return [
            self._encoded(position, batch, payload)
            for position, batch, payload in zip(positions, batches, payloads, strict=True)
        ]

    def _numpy_payloads(
        self, batches: list[RankBatch], matrices: list[np.ndarray]
    ) -> list[list[Any]]:
        payloads = []
        for batch in batches:
            rows = batch.positions
            spliced = self._ipc.spliced(len(rows), [Gather(matrix, rows) for matrix in matrices])
            if spliced is None:  # the first batch of its row count: Arrow learns the prefix
                spliced = self._ipc.parts(self.job.dataset.rows(rows, self.columns))
            payloads.append(spliced)
        return payloads

    def _arrow_payloads(self, batches: list[RankBatch]) -> list[list[Any]]:
        if len(batches) == 1:
            return [self._ipc.parts(self.job.dataset.rows(batches[0].positions, self.columns))]
        everything = np.concatenate([batch.positions for batch in batches])
        rows = self.job.dataset.rows(everything, self.columns)
        return [
            self._ipc.parts(rows.slice(start, stop - start)) for start, stop in _bounds(batches)
        ]

    def _encoded(self, position: Position, batch: RankBatch, payload: list[Any]) -> Encoded:
        following = self.job.next_position(position)
        batch_id = provenance.batch_id(self.job.job_id, position.epoch, position.step, self.rank)
        selector = str(batch.metrics.get("selector", self.job.config.selector))
        header = pb.Batch(
            batch_id=batch_id,
            position=pb.Position(epoch=position.epoch, step=position.step),
            rank=self.rank,
            num_rows=len(batch.positions),
            weights=_weights_bytes(batch),
            selector=selector,
            info_json=_INFO_JSON.encode(batch.metrics),
            next=pb.Position(epoch=following.epoch, step=following.step),
            info_arrays={k: codec.npy_bytes(v) for k, v in batch.arrays.items()},
        )
        wire = encode_batch(header, payload)
        if wire.nbytes > self.max_payload_bytes:
            raise MessageTooLargeError(
                f"a batch of {len(batch.positions)} rows is {wire.nbytes} bytes, above the "
                f"server's max message size {self.max_payload_bytes}; lower batch_size, "
                "request fewer columns or raise --max-message-mb"
            )
        return Encoded(batch_id, batch, wire, following, selector)


def _bounds(batches: list[RankBatch]) -> list[tuple[int, int]]:
    """Each batch's rows in the gather of all of them."""
    stops = list(itertools.accumulate(len(batch.positions) for batch in batches))
    return list(zip([0, *stops[:-1]], stops, strict=True))


def _weights_bytes(batch: RankBatch) -> bytes:
    if batch.weights is None:
        return b""
    return codec.stream_bytes(pa.RecordBatch.from_pydict({"weight": pa.array(batch.weights)}))


# One encoder for every batch: ``json.dumps(..., default=...)`` builds a new one per call.
_INFO_JSON = json.JSONEncoder(default=json_default)
