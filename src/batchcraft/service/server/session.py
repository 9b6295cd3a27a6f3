"""One rank's session: the transport of a rank's batches under flow control.

What the batches are, the trainer's feedback and scores, and the write-ahead
of selections belong to the rank's `batchcraft.batcher.stream.RankStream`;
the session does the transport: credit, packing and encoding. The handler
thread runs `Session.run` (a generator of responses); a reader thread
(`batchcraft.service.server.client_requests`) consumes the client's acks,
feedback and scores, and every wait on the client ends when it has been
silent for the idle timeout. Flow control is
`batchcraft.service.server.credit`'s, packing `batchcraft.service.server.packing`'s.
Batches leave as pre-serialised responses (`batchcraft.service.wire`).
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable, Iterator

from batchcraft.api.v1 import batch_service_pb2 as pb
from batchcraft.batcher.config import Position, StreamConfig
from batchcraft.batcher.job import Job
from batchcraft.batcher.registry import JobRegistry
from batchcraft.batcher.rounds import ScoringRound
from batchcraft.batcher.stream import RankStream
from batchcraft.errors import BatchcraftError, ConfigError
from batchcraft.logs import log_event
from batchcraft.service.server import packing
from batchcraft.service.server.acks import Sent, SentBatches
from batchcraft.service.server.client_requests import ClientRequests
from batchcraft.service.server.config import SessionLimits
from batchcraft.service.server.credit import Credit
from batchcraft.service.server.feedback import (
    decode_feedback,
    numbered_report,
    saved_reports,
    score_request,
)
from batchcraft.service.server.metrics import Metrics
from batchcraft.service.server.prefetch import prefetch
from batchcraft.service.server.provenance import ProvenanceLog
from batchcraft.service.server.rank_batches import BatchEncoder, Encoded
from batchcraft.service.wire import codec
from batchcraft.service.wire.response import response_bytes

IsActive = Callable[[], bool]
LOG = logging.getLogger("batchcraft.service")
_POLL = 0.2


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
        feedback_sender: str = "",
    ) -> None:
        self.session_id = session_id
        self.feedback_sender = feedback_sender  # "": the client does not number its reports
        self._confirmed = 0  # the latest FeedbackSaved sent
        self.job = job
        self.stream = stream
        self.batches = RankStream(
            job, stream.rank, num_epochs=stream.num_epochs, persist=registry.persist_selections
        )
        self.batches.reset(start)
        self.start = self.batches.position
        self.columns = list(stream.columns) or job.dataset.column_names
        self.registry = registry
        self.metrics = metrics
        self.provenance = provenance
        self.limits = limits
        self.schema = job.dataset.table.select(self.columns).schema
        self._metrics = metrics.stream(
            job.dataset.name, job.config.selector, job.job_id, stream.rank
        )
        self.credit = Credit(stream.max_in_flight, self._metrics.set_in_flight)
        self.client = ClientRequests(
            self._on_ack, self._apply_feedback, self.credit.wake, limits.idle_timeout
        )
        self._sent = SentBatches()  # what acks may name, and the provenance log records
        self._batch_bytes = 1  # payload size of the latest batch, to size packed messages
        self._requested: set[int] = set()  # rounds sent and not yet collected (``ahead``)
        self.max_batches_per_message = max(
            1, min(max_batches_per_message, limits.max_batches_per_message)
        )
        self.encoder = BatchEncoder(
            job, stream.rank, self.columns, limits.max_message_bytes - packing.HEADROOM
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
                feedback_numbered=True,
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
        self.client.start(requests)
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
            if self.job.ahead is not None:  # free the workers for jobs still served
                self.job.ahead.pause()

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
        first = True
        while not self.batches.exhausted:
            if not self._wait_for_credit(is_active):
                return
            self.registry.check_owner(self.job)  # lost its lease: the sessions move too
            scoring = self.batches.scoring_round()
            if scoring is not None:
                for round_ in [scoring, *self.batches.rounds_ahead()]:
                    if round_.round_id not in self._requested:  # in step order: so come the scores
                        self._requested.add(round_.round_id)
                        yield self._score_request(round_)
                if not self._collect_scores(scoring, is_active):
                    return
                self._requested.discard(scoring.round_id)
            yield from self._feedback_saved()
            group = self._batches(1 if first else self._group_size())
            first = False  # the first batch travels alone: a trainer waits for it
            for message in packing.messages(group, self.limits.max_message_bytes):
                yield response_bytes(message, packed=self.max_batches_per_message > 1)
        self._drain(is_active)

    def _feedback_saved(self) -> Iterator[pb.SessionResponse]:
        """`FeedbackSaved` when the job's checkpoint holds more of the client's reports."""
        checkpointed = self.registry.store is not None
        saved = saved_reports(self.job, self.stream.rank, self.feedback_sender, checkpointed)
        if saved > self._confirmed:
            self._confirmed = saved
            yield pb.SessionResponse(feedback_saved=pb.FeedbackSaved(sequence=saved))

    def _group_size(self) -> int:
        """How many batches the next message carries (`packing.group_size`)."""
        if self.max_batches_per_message == 1 or self.job.needs_scores:
            return 1
        return packing.group_size(
            self.max_batches_per_message,
            self.limits.max_message_bytes,
            self._batch_bytes,
            self.credit.available,
        )

    def _batches(self, count: int) -> list[Encoded]:
        """Encode the stream's next ``count`` batches (fewer at its end)."""
        group = self.encoder.encode(self.batches.take(count))
        self._metrics.batches_made(
            self.batches.selection_seconds,
            sum(self.batches.selection_seconds) + self.encoder.encode_seconds,
        )
        self._batch_bytes = group[-1].wire.nbytes
        self._sent.add([Sent(i.batch_id, i.batch, i.selector, i.following) for i in group])
        self.credit.spend(len(group))
        rows = sum(len(item.batch.positions) for item in group)
        fallbacks = sum("fallback_from" in item.batch.metrics for item in group)
        self._metrics.sent(len(group), rows, sum(i.wire.nbytes for i in group), fallbacks)
        self._metrics.made_ahead([item.batch.made_by for item in group])
        return group

    def _score_request(self, scoring: ScoringRound) -> pb.SessionResponse:
        columns = self.stream.score_columns or tuple(self.columns)
        return score_request(self.job.dataset, scoring, self.stream.rank, columns)

    def _collect_scores(self, scoring: ScoringRound, is_active: IsActive) -> bool:
        started = time.monotonic()
        while True:
            self.client.raise_error()
            if not is_active():
                return False
            try:
                scores = self.client.scores.get(timeout=_POLL)
                break
            except queue.Empty:
                if self.client.done.is_set():
                    self.client.raise_error()  # the reader failed: report it, not a clean end
                    return False  # the client ended its requests: it has left, not failed
                self.client.check_idle(started, f"the scores of round {scoring.round_id}")
                if time.monotonic() > started + self.limits.sync_timeout:
                    raise ConfigError(
                        f"no scores received for scoring round {scoring.round_id}"
                    ) from None
        ids, rows, scalars, vectors = decode_feedback(scores.feedback)
        self.batches.score(scoring, scores.round, ids, rows, scalars, vectors)
        self._metrics.feedback(len(ids))
        return scoring.wait(
            lambda: not is_active() or self.client.error is not None, self.limits.sync_timeout
        )

    def _apply_feedback(self, feedback: pb.Feedback) -> None:
        ids, rows, scalars, vectors = decode_feedback(feedback)
        numbered = numbered_report(feedback, self.stream.rank, self.feedback_sender)
        self.batches.report(ids, rows, scalars, vectors, numbered)
        self._metrics.feedback(len(ids))

    def _on_ack(self, ack: pb.Ack) -> None:
        """Check the ack against what was sent (`SentBatches.acknowledge`: a bad one changes
        nothing), log the acknowledged batches and move the cursor, then return the
        credit: once the last credit is back the session may end (`_drain`) and save the
        job, so everything the ack records must be recorded by then."""
        count = max(1, ack.count)
        following = Position(ack.next.epoch, ack.next.step) if ack.HasField("next") else None
        done = self._sent.acknowledge(following, count, self.credit.in_flight)
        if self.provenance is not None:
            for sent in done:  # the reader thread writes the log, off the send path
                self.provenance.record(
                    sent.batch_id, self.job.job_id, self.job.dataset, sent.batch, sent.selector
                )
        if following is not None:
            self.job.advance(self.stream.rank, following)
            self._update_lag()
        self.credit.refund(count)

    def _update_lag(self) -> None:
        cursors = dict(self.job.cursors)
        mine = cursors.get(self.stream.rank)
        if mine is None or not cursors:
            return
        # the order's steps: an epoch-level selector's would plan the epoch to count them
        steps = max(1, self.job.layout.steps)
        lead = max(p.epoch * steps + p.step for p in cursors.values())
        self._metrics.set_rank_lag(lead - (mine.epoch * steps + mine.step))

    def _wait_for_credit(self, is_active: IsActive) -> bool:
        """Wait for credit; False once the client has left (an error it caused raises, as
        does a client silent for the idle timeout)."""
        since = time.monotonic()

        def stop() -> bool:
            return self.client.stopped or not is_active() or self.client.idle(since)

        available = self.credit.wait_available(stop)
        self.client.raise_error()
        self.client.check_idle(since, f"acks of {self.credit.in_flight} batches")
        return available and is_active()

    def _drain(self, is_active: IsActive) -> None:
        """After the last batch, wait for its acks so the final cursor is recorded."""
        since = time.monotonic()
        self.credit.wait_returned(
            lambda: not is_active() or self.client.done.is_set() or self.client.idle(since)
        )
        self.client.raise_error()
        if self.credit.in_flight:
            self.client.check_idle(since, f"the final acks of {self.credit.in_flight} batches")
