"""`BatchEncoder`: one rank's batches of a job, selected, gathered and IPC-encoded for the wire.

This is the server's side of the wire format (`batchcraft.service.wire`): it
asks the job for the rank's selections, so it lives with the server, not in
the format package the client shares.

A large fixed-width batch's IPC message is its cached prefix followed by
its rows, which are gathered from the dataset's column views only when the
response is assembled, straight into it (`batchcraft.service.wire.assembly`).
Any other batch is gathered by Arrow (one gather for all the batches of a
message) and serialised (`batchcraft.service.wire.ipc`). The protobuf runtime
only serialises the few header fields (`batchcraft.service.wire.header`);
`batchcraft.service.wire.response` joins it all into the response with a single copy.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from batchcraft.batcher.config import Position
from batchcraft.batcher.job import Job
from batchcraft.batcher.selections import RankBatch
from batchcraft.dataset import provenance
from batchcraft.service.server.status import MessageTooLargeError
from batchcraft.service.wire.assembly import Gather
from batchcraft.service.wire.header import batch_header
from batchcraft.service.wire.ipc import IpcParts
from batchcraft.service.wire.response import EncodedBatch, encode_batch


@dataclass(frozen=True)
class Encoded:
    """A batch ready for the wire, with the selection it came from."""

    batch_id: str
    batch: RankBatch
    wire: EncodedBatch
    following: Position
    selector: str


class BatchEncoder:
    """Encodes rank ``rank``'s batches of ``job`` (as its `RankStream` returns them).

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
        self.encode_seconds = 0.0  # of the latest `encode` call (gather and encode)
        self._ipc = IpcParts(job.dataset.table.select(columns).schema)
        self._matrices = job.dataset.matrices(columns)

    def encode(self, batches: list[RankBatch]) -> list[Encoded]:
        """Gather and encode ``batches`` (consecutive steps of the rank).

        Large null-free fixed-width batches are spliced behind their IPC
        prefix (`IpcParts.spliced`) as rows to gather from the dataset's
        column views into the response. Other batches are gathered by Arrow,
        all of them at once, and each is serialised from a zero-copy slice of
        the gather: for small packed batches the per-call overhead of a
        gather would otherwise dominate.
        """
        started = time.perf_counter()
        if self._matrices is not None and all(self._ipc.splices(len(b.positions)) for b in batches):
            payloads = self._numpy_payloads(batches, self._matrices)
        else:
            payloads = self._arrow_payloads(batches)
        encoded = [
            self._encoded(batch, payload) for batch, payload in zip(batches, payloads, strict=True)
        ]
        self.encode_seconds = time.perf_counter() - started
        return encoded

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

    def _encoded(self, batch: RankBatch, payload: list[Any]) -> Encoded:
        position = batch.position
        following = self.job.next_position(position)
        batch_id = provenance.batch_id(self.job.job_id, position.epoch, position.step, self.rank)
        selector = str(batch.metrics.get("selector", self.job.config.selector))
        header = batch_header(
            batch_id=batch_id,
            position=position,
            following=following,
            rank=self.rank,
            num_rows=len(batch.positions),
            selector=selector,
            weights=batch.weights,
            info=batch.metrics,
            info_arrays=batch.arrays,
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
