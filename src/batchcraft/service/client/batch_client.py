"""`BatchClient`: iterate a rank's batches, report feedback, checkpoint and resume.

Example:
    >>> client = BatchClient("localhost:50051", dataset="news", batch_size=256,
    ...                      rank=0, world_size=2, seed=0, columns=["id", "embedding"])
    >>> for batch in client:                      # doctest: +SKIP
    ...     loss = train_step(batch["embedding"])
    ...     client.report(batch["id"], losses=loss)
    >>> state = client.state_dict()               # doctest: +SKIP

A batch is a dict of numpy arrays (numeric and fixed-size numeric list columns, the
latter 2-D) and Python lists (strings, variable lists), plus ``"weight"`` (float32) when
the selector weights rows. `BatchClient.last_meta` describes the latest batch.

The gRPC channel is created on first use in the process that iterates, so a client built
before a fork (DataLoader workers) is safe. The pieces: the session's requests, batches
and acks (`batchcraft.service.client.stream`), the channel (`.connection`), feedback
(`.feedback`), resume tokens (`.state`), reconnects (`.reconnect`), redirects (`.route`).
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Generator, Iterator
from typing import Any

import grpc

from batchcraft.api.v1 import batch_service_pb2 as pb
from batchcraft.batcher.config import JobConfig, Position, ScoringMode, StreamConfig
from batchcraft.batcher.order import LastBatch
from batchcraft.errors import ConfigError
from batchcraft.service.client.connection import BatchServiceError, Connection
from batchcraft.service.client.fallback import FallbackWatch
from batchcraft.service.client.feedback import Scorer, feedback_message
from batchcraft.service.client.feedback_log import FeedbackLog
from batchcraft.service.client.meta import BatchMeta
from batchcraft.service.client.reconnect import ReconnectBudget
from batchcraft.service.client.route import Route
from batchcraft.service.client.state import client_state, resume_point
from batchcraft.service.client.stream import (
    Requests,
    SessionStream,
    open_request,
    warn_if_finished,
)


class BatchClient:
    """One rank's stream of batches from a batchcraft server.

    Args:
        target: any gRPC target: ``host:port``, replicas as ``ipv4:h1:p1,h2:p2``, or
            ``dns:///name`` with several addresses (gRPC's ``pick_first`` connects to
            the first that answers; a replica that does not own the job redirects to
            the one that does; with ``reconnect_attempts``, a dead replica's sessions
            resume in place on the next).
        dataset: registered dataset name.
        selector: selector name; ``selector_params`` its parameters.
        batch_size: rows per batch for this rank.
        rank: this rank; ``world_size`` ranks share the job.
        seed: seed of the order and selection.
        columns: columns to receive (None: all).
        token: bearer token, if the server requires one.
        job: job id shared by the ranks (None: derived from the parameters).
        num_epochs: epochs to iterate (0: endless).
        max_in_flight: batches the server may send ahead of consumption.
        scoring: ``"async"``, ``"sync"`` or ``"ahead"`` (sync rounds sent
            `SCORE_AHEAD_STEPS` steps before their selection); sync and ahead need
            ``scorer``.
        scorer: called with the candidates of a sync round (dict like a
            batch); returns per-row losses, or a dict of feedback columns and
            scalars (``learner_embeddings``, ``learner_logit_scale`` ...).
        score_columns: columns sent with candidates (None: ``columns``).
        last_batch: ``"partial"`` or ``"drop"`` (see `batchcraft.batcher.order`).
        root_certificates: PEM roots to verify a TLS server (None: plaintext).
        max_message_bytes: largest message accepted (the server has its own limit).
        reconnect_attempts: retries, resuming in place, when the server is unavailable
            (a session the server ended as idle is resumed regardless).
        max_batches_per_message: let the server pack up to this many small
            batches into one message (1: one batch per message).

    Attributes:
        acknowledge_on_close: when the consumer stops early, tell the server which
            batches it received before the call ends (so the server's cursor and
            provenance log count them). Off where received is not consumed, e.g. in
            a DataLoader worker whose prefetched batches the trainer may never take.
    """

    def __init__(
        self,
        target: str,
        dataset: str,
        selector: str = "uniform",
        batch_size: int = 32,
        *,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        columns: list[str] | None = None,
        selector_params: dict[str, Any] | None = None,
        token: str | None = None,
        job: str | None = None,
        num_epochs: int = 1,
        max_in_flight: int = 8,
        scoring: ScoringMode = "async",
        scorer: Scorer | None = None,
        score_columns: list[str] | None = None,
        last_batch: LastBatch = "partial",
        root_certificates: bytes | None = None,
        max_message_bytes: int = 256 << 20,
        reconnect_attempts: int = 0,
        max_batches_per_message: int = 16,
    ) -> None:
        self.config = JobConfig(
            dataset,
            selector,
            dict(selector_params or {}),
            batch_size,
            world_size,
            seed,
            last_batch,
            scoring,  # type: ignore[arg-type]
        )
        self.stream = StreamConfig(
            rank, tuple(columns or ()), max_in_flight, num_epochs, None, tuple(score_columns or ())
        )
        _check_arguments(rank, world_size, scoring, scorer, max_batches_per_message)
        self.max_batches_per_message = max_batches_per_message
        self.job = job
        self.scorer = scorer
        self.reconnect_attempts = reconnect_attempts
        self.connection = Connection(target, token, root_certificates, max_message_bytes)
        self._route = Route(self.connection)  # or the replica that owns the job
        self.opened: pb.SessionOpened | None = None
        self.acknowledge_on_close = True
        self._next: Position | None = None  # where the stream resumes
        self._last_header: pb.Batch | None = None
        self._last_meta: BatchMeta | None = None
        self._feedback = FeedbackLog()  # reports kept until saved: resent after a failover
        self._session_stream: SessionStream | None = None
        self._iterator: weakref.ref[Generator[dict[str, Any], None, None]] | None = None
        self._closed = False
        self._received = 0  # batches decoded, over every session of this client
        self._fallbacks = FallbackWatch(selector, max_in_flight)

    @property
    def target(self) -> str:
        """The gRPC target the client was given."""
        return self.connection.target

    @property
    def token(self) -> str | None:
        """The bearer token sent with every call."""
        return self.connection.token

    @property
    def root_certificates(self) -> bytes | None:
        """PEM roots that verify a TLS server (None: plaintext)."""
        return self.connection.root_certificates

    @property
    def max_message_bytes(self) -> int:
        """Largest message accepted."""
        return self.connection.max_message_bytes

    def __iter__(self) -> Iterator[dict[str, Any]]:
        iterator = self._iterate()
        # Weak: a loop left with `break` frees the generator at once, which ends the
        # session gracefully (`SessionStream.end_early`) right there, not whenever a
        # cycle is collected.
        self._iterator = weakref.ref(iterator)
        self._closed = False
        return iterator

    def _iterate(self) -> Generator[dict[str, Any], None, None]:
        reconnects = ReconnectBudget(self.reconnect_attempts)
        while True:
            received = self._received
            try:
                yield from self._session()
                return
            except grpc.RpcError as error:
                code = error.code()  # type: ignore[attr-defined]
                if self._closed:
                    raise BatchServiceError(code, "the client was closed") from None
                if not self._route.recover(error, reconnects, self._received > received):
                    raise BatchServiceError(code, error.details() or "") from None  # type: ignore[attr-defined]

    def report(self, ids: Any, losses: Any = None, **feedback: Any) -> None:
        """Send per-example feedback (asynchronous: returns at once).

        Args:
            ids: the rows' ``id`` values.
            losses: per-example learner losses.
            **feedback: more row columns (``learner_embeddings`` ...), scalars
                (``learner_logit_scale`` ...) or vectors (``gradient_first_moment`` ...).
        """
        if losses is not None:
            feedback["learner_losses"] = losses
        message = pb.SessionRequest(feedback=feedback_message(list(ids), feedback))
        self._fallbacks.reported = True
        self._feedback.report(message)

    def state_dict(self) -> dict[str, Any]:
        """An opaque, versioned, JSON-serialisable resume token."""
        return client_state(self.job, self.config, self.stream.rank, self._next)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from a `state_dict` on the next iteration.

        Raises:
            ConfigError: not a client state of a supported version, or of other parameters.
        """
        self.job, self._next = resume_point(state, self.job, self.state_dict())

    def list_datasets(self) -> list[dict[str, Any]]:
        """The server's registered datasets; `BatchServiceError` if the call fails."""
        return self.connection.list_datasets()

    def close(self) -> None:
        """End the open session and close the channel.

        A session the consumer stopped early ends gracefully: the server is told
        which batches were received (they count as served, on its cursor and in
        its provenance log) before the call ends (see ``acknowledge_on_close``).
        Called from another thread while the consumer waits for a batch, it
        cancels the call: the consumer gets `BatchServiceError` (CANCELLED). The
        iteration never reconnects after `close`.
        """
        self._closed = True
        reference, self._iterator = self._iterator, None
        iterator = reference() if reference is not None else None
        if iterator is not None:
            with contextlib.suppress(ValueError):  # ValueError: running in another thread
                iterator.close()
        session = self._session_stream
        if session is not None:
            session.call.cancel()
        self._route.close()

    def __enter__(self) -> BatchClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def last_meta(self) -> BatchMeta | None:
        """Where the latest batch comes from (decoded on first access, not per batch)."""
        if self._last_meta is None and self._last_header is not None:
            self._last_meta = BatchMeta.of(self._last_header)
        return self._last_meta

    def _session(self) -> Iterator[dict[str, Any]]:
        """One session's batches, from where the stream resumes."""
        start = open_request(
            self.config, self.stream, self.job, self.max_batches_per_message, self._next
        )
        start.open.feedback_sender = self._feedback.sender
        requests = Requests([start])
        self._feedback.attach(requests)
        session = self._session_stream = SessionStream(
            self._route.current, requests, self._on_opened, self.scorer, self._feedback.saved
        )
        try:
            for batch, header in session:
                self._next = Position(header.next.epoch, header.next.step)
                self._last_header, self._last_meta = header, None
                self._received += 1
                self._fallbacks.received(header.selector)
                try:
                    yield batch
                except GeneratorExit:
                    session.end_early(self.acknowledge_on_close)
                    raise
        finally:
            self._feedback.attach(None)
            self._session_stream = None
            session.close()

    def _on_opened(self, opened: pb.SessionOpened) -> None:
        self.opened = opened
        self.job = opened.job
        self._feedback.opened(opened.feedback_numbered)
        warn_if_finished(opened)


def _check_arguments(
    rank: int, world_size: int, scoring: str, scorer: Scorer | None, max_batches_per_message: int
) -> None:
    """What `JobConfig` and `StreamConfig` do not check: the client's own arguments."""
    if rank >= world_size:
        raise ConfigError(f"rank={rank} must be < world_size={world_size}")
    if scoring in ("sync", "ahead") and scorer is None:
        raise ConfigError(f"scoring={scoring!r} needs a scorer callback")
    if not 1 <= max_batches_per_message <= 1024:
        raise ConfigError(f"{max_batches_per_message=} must be in [1, 1024]")
