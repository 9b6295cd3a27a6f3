"""One rank's session: the loop that sends batches under flow control.

The handler thread runs `Session.run` (a generator of responses); a reader
thread consumes the client's acks, feedback and scores. At most
``max_in_flight`` batches are produced and not yet acknowledged, so a stalled
client holds the server's memory for that session to a few batches: the
loop waits for credit instead of producing more. Credit is counted in
batches; a client returns it with one ack for several batches.

Batches leave as pre-serialised responses (`batchcraft.service.wire`). For
clients that accept it, consecutive small batches are packed into one
message (up to ``max_batches_per_message``, about `PACK_BYTES` of payload,
and the credit available): Python gRPC costs a fixed amount per message, so
packing is what lets small batches reach thousands per second.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

import grpc
import numpy as np
import pyarrow as pa

from batchcraft.api.v1 import batch_service_pb2 as pb
from batchcraft.batcher.config import Position, StreamConfig
from batchcraft.batcher.errors import FeedbackError
from batchcraft.batcher.job import Job, RankBatch
from batchcraft.batcher.registry import JobRegistry
from batchcraft.batcher.rounds import ScoringRound
from batchcraft.errors import BatchcraftError, ConfigError
from batchcraft.logs import log_event
from batchcraft.service.server.metrics import Metrics
from batchcraft.service.server.prefetch import prefetch
from batchcraft.service.server.provenance import ProvenanceLog
from batchcraft.service.server.rank_batches import BatchEncoder, Encoded
from batchcraft.service.wire import codec
from batchcraft.service.wire.response import EncodedBatch, response_bytes

IsActive = Callable[[], bool]
LOG = logging.getLogger("batchcraft.service")
_POLL = 0.2
PACK_BYTES = 2 << 20
"""Packing stops before a message's payload passes this: 64 KiB batches travel up to
the client's ``max_batches_per_message`` to a message, 512 KiB batches three. Python
gRPC pays a fixed cost per message (thread hand-offs and a completion wait, about as
much as sending 512 KiB), which packing pays once per message instead of per batch."""
_HEADROOM = 64 << 10  # room for the response's header fields within the message limit
_FIELD_OVERHEAD = 32  # keys, lengths and alignment padding around one packed batch


@dataclass(frozen=True)
class SessionLimits:
    """Server-side limits every session obeys.

    Attributes:
        max_message_bytes: the gRPC message size limit.
        sync_timeout: seconds a synchronous scoring round waits.
        max_batches_per_message: cap on the batches packed into one message.
        prefetch: produce responses on a background thread (`prefetch`).
    """

    max_message_bytes: int
    sync_timeout: float
    max_batches_per_message: int = 64
    prefetch: bool = False


class Session:
    """Streams one rank's batches of one job."""

    def __init__(
        self,
        session_id: str,
        job: Job,
        stream: StreamConfig,
        start: Position,
        registry: JobRegistry,
        metrics: Metrics,
        provenance: ProvenanceLog | None,
        limits: SessionLimits,
        max_batches_per_message: int = 1,
    ) -> None:
        self.session_id = session_id
        self.job = job
        self.stream = stream
        self.start = job.normalize(start)
        self.columns = list(stream.columns) or job.dataset.column_names
        self.registry = registry
        self.metrics = metrics
        self.provenance = provenance
        self.limits = limits
        self.schema = job.dataset.table.select(self.columns).schema
        self._credit = threading.Condition()
        self._in_flight = 0
        self._scores: queue.Queue[pb.Scores] = queue.Queue()
        self._error: BaseException | None = None
        self._reader_done = threading.Event()
        self._metrics = metrics.stream(
            job.dataset.name, job.config.selector, job.job_id, stream.rank
        )
        # Batches sent but not yet acknowledged, oldest first, for the provenance log
        # (without their payloads: a stalled client must not pin them).
        self._unlogged: collections.deque[_Sent] = collections.deque()
        self._batch_bytes = 1  # payload size of the latest batch, to size packed messages
        self.max_batches_per_message = max(
            1, min(max_batches_per_message, limits.max_batches_per_message)
        )
        self.encoder = BatchEncoder(
            job, stream.rank, self.columns, limits.max_message_bytes - _HEADROOM
        )

    def opened(self) -> pb.SessionResponse:
        """The first response: schema, sizes and the start position."""
        return pb.SessionResponse(
            opened=pb.SessionOpened(
                session_id=self.session_id,
                job=self.job.job_id,
                arrow_schema=codec.schema_bytes(self.schema),
                num_rows=self.job.dataset.num_rows,
                steps_per_epoch=self.job.steps_in(self.start.epoch),
                start=pb.Position(epoch=self.start.epoch, step=self.start.step),
                max_in_flight=self.stream.max_in_flight,
                selector=self.job.config.selector,
                dataset=self.job.dataset.name,
                num_epochs=self.stream.num_epochs,
                max_batches_per_message=self.max_batches_per_message,
            )
        )

    def run(
        self, requests: Iterator[pb.SessionRequest], is_active: IsActive
    ) -> Iterator[pb.SessionResponse | bytes]:
        """Yield responses until the requested epochs are served or the client leaves.

        Batches are yielded as serialised `SessionResponse` bytes, other
        responses as messages (the server's serializer passes bytes through).
        They are produced on a background thread (`prefetch`) when
        ``SessionLimits.prefetch`` is set.
        """
        reader = threading.Thread(target=self._read, args=(requests,), daemon=True)
        reader.start()
        self._metrics.open()
        try:
            yield self.opened()
            if self.limits.prefetch:
                name = f"encode-{self.session_id[:8]}"
                yield from prefetch(self._responses, is_active, name=name)
            else:
                yield from self._responses(is_active)
        finally:
            self._metrics.close()
            self._save_job()

    def _save_job(self) -> None:
        """Save the job as the session ends. A failure is logged, not sent: the batches
        were served, and the periodic saver retries (selections a later batch depends
        on were already saved ahead of sending it, `persist_selections`)."""
        try:
            self.registry.save(self.job)
        except (OSError, BatchcraftError) as error:
            log_event(
                LOG, logging.WARNING, "session_save_failed", job=self.job.job_id, error=str(error)
            )

    def _responses(self, is_active: IsActive) -> Iterator[pb.SessionResponse | bytes]:
        """Score requests and batch responses, under flow control, then wait for the last acks."""
        position = self.start
        first = True
        while self._in_range(position):
            if not self._wait_for_credit(is_active):
                return
            if self.job.needs_scores:
                scoring = self.job.scoring_round(position)
                if scoring is not None:
                    yield self._score_request(scoring)
                    if not self._collect_scores(scoring, is_active):
                        return
            group = self._batches(position, 1 if first else self._group_size())
            position = group[-1].following
            first = False  # the first batch travels alone: a trainer waits for it
            for message in self._messages(group):
                yield response_bytes(message, packed=self.max_batches_per_message > 1)
        self._drain(is_active)

    def _in_range(self, position: Position) -> bool:
        return self.stream.num_epochs == 0 or position.epoch < self.stream.num_epochs

    def _group_size(self) -> int:
        """How many batches the next message carries: as many as fit `PACK_BYTES`
        (judged by the latest batch's size), the client's packing limit and the credit."""
        if self.max_batches_per_message == 1 or self.job.needs_scores:
            return 1
        limit = min(PACK_BYTES, self.limits.max_message_bytes - _HEADROOM)
        by_size = limit // max(1, self._batch_bytes)
        with self._credit:
            credit = self.stream.max_in_flight - self._in_flight
        return max(1, min(self.max_batches_per_message, by_size, credit))

    def _messages(self, group: list[Encoded]) -> Iterator[list[EncodedBatch]]:
        """``group`` cut into messages of at most `PACK_BYTES` and within the size limit
        (a group is sized by the previous batch's payload; its batches may be larger).
        A batch always fits a message of its own (the encoder checked its size)."""
        limit = min(PACK_BYTES, self.limits.max_message_bytes - _HEADROOM)
        message: list[EncodedBatch] = []
        size = 0
        for item in group:
            wire = item.wire
            cost = len(wire.header) + wire.nbytes + _FIELD_OVERHEAD
            if message and size + cost > limit:
                yield message
                message, size = [], 0
            message.append(wire)
            size += cost
        yield message

    def _batches(self, position: Position, count: int) -> list[Encoded]:
        """Encode up to ``count`` consecutive batches from ``position`` (within range)."""
        positions = [position]
        while len(positions) < count:
            following = self.job.next_position(positions[-1])
            if not self._in_range(following):
                break
            positions.append(following)
        group = self.encoder.encode(positions)
        self.registry.persist_selections(self.job)
        self._metrics.batches_made(self.encoder.selection_seconds, self.encoder.encode_seconds)
        self._batch_bytes = group[-1].wire.nbytes
        with self._credit:
            if self.provenance is not None:
                for item in group:
                    self._unlogged.append(
                        _Sent(item.batch_id, item.batch, item.selector, item.following)
                    )
            self._in_flight += len(group)
            self._metrics.set_in_flight(self._in_flight)
        rows = sum(len(item.batch.positions) for item in group)
        self._metrics.sent(len(group), rows, sum(i.wire.nbytes for i in group))
        return group

    def _score_request(self, scoring: ScoringRound) -> pb.SessionResponse:
        columns = ["id", *[c for c in (self.stream.score_columns or self.columns) if c != "id"]]
        rows = self.job.dataset.rows(scoring.slice_for(self.stream.rank), columns)
        position = pb.Position(epoch=scoring.position.epoch, step=scoring.position.step)
        request = pb.ScoreRequest(
            round=scoring.round_id, position=position, candidates=codec.stream_bytes(rows)
        )
        return pb.SessionResponse(score_request=request)

    def _collect_scores(self, scoring: ScoringRound, is_active: IsActive) -> bool:
        deadline = time.monotonic() + self.limits.sync_timeout
        while True:
            self._raise_reader_error()
            if not is_active():
                return False
            try:
                scores = self._scores.get(timeout=_POLL)
                break
            except queue.Empty:
                if self._reader_done.is_set():
                    self._raise_reader_error()  # the reader failed: report it, not a clean end
                    return False  # the client ended its requests: it has left, not failed
                if time.monotonic() > deadline:
                    raise ConfigError(
                        f"no scores received for scoring round {scoring.round_id}"
                    ) from None
        if scores.round != scoring.round_id:
            raise FeedbackError(
                f"scores are for round {scores.round}, expected round {scoring.round_id}"
            )
        expected = scoring.slice_for(self.stream.rank)
        positions = self._apply_feedback(scores.feedback)
        if sorted(positions.tolist()) != sorted(expected.tolist()):
            raise FeedbackError(
                f"scores of round {scoring.round_id} cover {len(positions)} rows; they must cover "
                f"exactly the {len(expected)} candidates sent"
            )
        scoring.mark_scored(self.stream.rank)
        return scoring.wait(
            lambda: not is_active() or self._error is not None, self.limits.sync_timeout
        )

    def _apply_feedback(self, feedback: pb.Feedback) -> np.ndarray:
        try:
            ids, columns = codec.read_feedback(codec.read_stream(feedback.rows))
        except (pa.ArrowException, ValueError) as exc:
            raise FeedbackError(f"cannot decode feedback rows: {exc}") from exc
        try:
            vectors = {name: codec.read_vector(data) for name, data in feedback.vectors.items()}
        except ValueError as exc:
            raise FeedbackError(f"cannot decode feedback vectors (float32 values): {exc}") from exc
        positions = self.job.dataset.positions_of(ids)
        unknown = [ids[i] for i in np.flatnonzero(positions < 0)[:3]]
        if unknown:
            raise FeedbackError(f"feedback names ids that are not served: {unknown}")
        self.job.feedback.update(positions, columns, dict(feedback.scalars), vectors)
        self._metrics.feedback(len(ids))
        return positions

    def _read(self, requests: Iterator[pb.SessionRequest]) -> None:
        try:
            for request in requests:
                kind = request.WhichOneof("kind")
                if kind == "ack":
                    self._on_ack(request.ack)
                elif kind == "feedback":
                    self._apply_feedback(request.feedback)
                elif kind == "scores":
                    self._scores.put(request.scores)
                else:
                    raise ConfigError(f"unexpected {kind!r} message after the session was opened")
        except Exception as exc:
            if not _is_cancellation(exc):
                self._error = exc
        finally:
            self._reader_done.set()
            with self._credit:
                self._credit.notify_all()

    def _on_ack(self, ack: pb.Ack) -> None:
        """Log the acknowledged batches and move the cursor, then return the credit:
        once the last credit is back the session may end (`_drain`) and save the job,
        so everything the ack records must be recorded by then."""
        count = max(1, ack.count)
        if self.provenance is not None:
            with self._credit:
                received = self._acknowledged(ack, count)
            for sent in received:  # the reader thread writes the log, off the send path
                self.provenance.record(
                    sent.batch_id, self.job.job_id, self.job.dataset, sent.batch, sent.selector
                )
        if ack.HasField("next"):
            self.job.advance(self.stream.rank, Position(ack.next.epoch, ack.next.step))
            self._update_lag()
        with self._credit:
            self._in_flight = max(0, self._in_flight - count)
            self._credit.notify_all()
            self._metrics.set_in_flight(self._in_flight)

    def _acknowledged(self, ack: pb.Ack, count: int) -> list[_Sent]:
        """Pop the unlogged batches ``ack`` covers: those before ``ack.next``, else ``count``."""
        if ack.HasField("next"):
            limit = Position(ack.next.epoch, ack.next.step)
            done = []
            while self._unlogged and self._unlogged[0].following <= limit:
                done.append(self._unlogged.popleft())
            return done
        return [self._unlogged.popleft() for _ in range(min(count, len(self._unlogged)))]

    def _update_lag(self) -> None:
        cursors = dict(self.job.cursors)
        mine = cursors.get(self.stream.rank)
        if mine is None or not cursors:
            return
        steps = max(1, self.job.steps_in(mine.epoch))
        lead = max(p.epoch * steps + p.step for p in cursors.values())
        self._metrics.set_rank_lag(lead - (mine.epoch * steps + mine.step))

    def _wait_for_credit(self, is_active: IsActive) -> bool:
        with self._credit:
            while self._in_flight >= self.stream.max_in_flight:
                self._raise_reader_error()
                if self._reader_done.is_set() or not is_active():
                    self._raise_reader_error()  # it may have failed since the check above
                    return False
                self._credit.wait(_POLL)
        self._raise_reader_error()
        return is_active()

    def _drain(self, is_active: IsActive) -> None:
        """After the last batch, wait for its acks so the final cursor is recorded."""
        with self._credit:
            while self._in_flight > 0 and is_active() and not self._reader_done.is_set():
                self._credit.wait(_POLL)
        self._raise_reader_error()

    def _raise_reader_error(self) -> None:
        if self._error is not None:
            raise self._error


class _Sent(NamedTuple):
    """What the provenance log needs of a batch sent and not yet acknowledged."""

    batch_id: str
    batch: RankBatch
    selector: str
    following: Position


def _is_cancellation(error: BaseException) -> bool:
    return isinstance(error, grpc.RpcError)
