"""`BatchClient`: iterate a rank's batches, report feedback, checkpoint and resume.

Example:
    >>> client = BatchClient("localhost:50051", dataset="news", batch_size=256,
    ...                      rank=0, world_size=2, seed=0, columns=["id", "embedding"])
    >>> for batch in client:                      # doctest: +SKIP
    ...     loss = train_step(batch["embedding"])
    ...     client.report(batch["id"], losses=loss)
    >>> state = client.state_dict()               # doctest: +SKIP

A batch is a dict of numpy arrays (numeric and fixed-size numeric list
columns, the latter 2-D) and Python lists (strings, variable lists), plus
``"weight"`` (float32) when the selector weights rows. `BatchClient.last_meta`
describes the latest batch (id, epoch, step, selector info).

The gRPC channel is created on first use in the process that iterates, so a
client built before a fork (DataLoader workers) is safe.

On the wire: batches are read straight from the received bytes (Arrow reads
the IPC payload in place, see `batchcraft.service.wire`), several small
batches may arrive in one message, and flow credit is returned with one ack
per half window of batches rather than one per batch.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import sys
import threading
import time
import weakref
from collections.abc import Callable, Generator, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import grpc
import numpy as np

from batchcraft.api.v1 import batch_service_pb2 as pb
from batchcraft.api.v1 import batch_service_pb2_grpc as pb_grpc
from batchcraft.batcher.config import JobConfig, Position, ScoringMode, StreamConfig
from batchcraft.batcher.order import LastBatch
from batchcraft.dataset.fields import SCALAR_FEEDBACK, VECTOR_FEEDBACK
from batchcraft.errors import BatchcraftError, ConfigError
from batchcraft.service import codec
from batchcraft.service.server import SERVICE_NAME, channel_options
from batchcraft.service.wire import BatchView, read_response

LOG = logging.getLogger("batchcraft.client")
STATE_FORMAT = "batchcraft.BatchClient"
STATE_VERSION = 1
_END_TIMEOUT = 5.0  # seconds a stopped session waits for the server to end the call
_COMPATIBLE = (
    "dataset",
    "selector",
    "selector_params",
    "batch_size",
    "world_size",
    "seed",
    "last_batch",
    "scoring",
    "rank",
)
Scorer = Callable[[dict[str, Any]], "np.ndarray | dict[str, Any]"]


class BatchServiceError(BatchcraftError):
    """The server answered with an error status; ``code`` is the `grpc.StatusCode`."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self.code = code
        self.details = details
        super().__init__(f"{code.name}: {details}")


@dataclass(frozen=True)
class BatchMeta:
    """Where a batch comes from: ids, position and the selector's info."""

    batch_id: str
    epoch: int
    step: int
    rank: int
    selector: str
    info: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


class BatchClient:
    """One rank's stream of batches from a batchcraft server.

    Args:
        target: ``host:port`` of the server.
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
        scoring: ``"async"`` or ``"sync"``; sync needs ``scorer``.
        scorer: called with the candidates of a sync round (dict like a
            batch); returns per-row losses, or a dict of feedback columns and
            scalars (``learner_embeddings``, ``learner_logit_scale`` ...).
        score_columns: columns sent with candidates (None: ``columns``).
        last_batch: ``"partial"`` or ``"drop"`` (see `batchcraft.batcher.order`).
        root_certificates: PEM roots to verify a TLS server (None: plaintext).
        max_message_bytes: largest message accepted (the server has its own limit).
        reconnect_attempts: retries, resuming in place, when the server is unavailable.
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
        if rank >= world_size:
            raise ConfigError(f"rank={rank} must be < world_size={world_size}")
        if scoring == "sync" and scorer is None:
            raise ConfigError("scoring='sync' needs a scorer callback")
        if not 1 <= max_batches_per_message <= 1024:
            raise ConfigError(f"{max_batches_per_message=} must be in [1, 1024]")
        self.max_batches_per_message = max_batches_per_message
        self.target = target
        self.job = job
        self.scorer = scorer
        self.token = token
        self.root_certificates = root_certificates
        self.max_message_bytes = max_message_bytes
        self.reconnect_attempts = reconnect_attempts
        self._last_header: pb.Batch | None = None
        self._last_meta: BatchMeta | None = None
        self.opened: pb.SessionOpened | None = None
        self._next: Position | None = None
        self._requests: queue.Queue[pb.SessionRequest | None] | None = None
        self._iterator: weakref.ref[Generator[dict[str, Any], None, None]] | None = None
        self._closed = False
        self.acknowledge_on_close = True
        self._pending: list[pb.SessionRequest] = []
        self._channel: grpc.Channel | None = None
        self._pid = -1
        self._call: Any = None
        self._received = 0  # batches decoded, over every session of this client

    def __iter__(self) -> Iterator[dict[str, Any]]:
        iterator = self._iterate()
        # Weak: a loop left with `break` frees the generator at once, which ends the
        # session gracefully (`_end_early`) right there, not whenever a cycle is collected.
        self._iterator = weakref.ref(iterator)
        self._closed = False
        return iterator

    def _iterate(self) -> Generator[dict[str, Any], None, None]:
        attempts = 0
        while True:
            received = self._received
            try:
                yield from self._session()
                return
            except grpc.RpcError as error:
                code = error.code()  # type: ignore[attr-defined]
                if self._closed:
                    raise BatchServiceError(code, "the client was closed") from None
                if self._received > received:
                    attempts = 0  # the budget is per outage, not per run
                if code == grpc.StatusCode.UNAVAILABLE and attempts < self.reconnect_attempts:
                    attempts += 1
                    time.sleep(min(2.0, 0.1 * 2**attempts))
                    continue
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
        message = pb.SessionRequest(feedback=_feedback_message(list(ids), feedback))
        if self._requests is not None:
            self._requests.put(message)
        else:
            self._pending.append(message)

    def state_dict(self) -> dict[str, Any]:
        """An opaque, versioned, JSON-serialisable resume token."""
        config = asdict(self.config)
        config["rank"] = self.stream.rank
        nxt = None if self._next is None else [self._next.epoch, self._next.step]
        return {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "job": self.job,
            "config": config,
            "next": nxt,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from a `state_dict` on the next iteration.

        Raises:
            ConfigError: the state is not a client state of a supported version,
                or was made for different parameters.
        """
        check_state(state, STATE_FORMAT, self.job)
        mine = self.state_dict()["config"]
        different = {
            k: (state["config"].get(k), mine[k])
            for k in _COMPATIBLE
            if state["config"].get(k) != mine[k]
        }
        if different:
            raise ConfigError(
                f"state was saved with different parameters (saved, current): {different}"
            )
        self.job = state["job"] or self.job
        self._next = None if state["next"] is None else Position(*state["next"])

    def list_datasets(self) -> list[dict[str, Any]]:
        """The server's registered datasets.

        Raises:
            BatchServiceError: the call failed (unreachable server, wrong token ...).
        """
        try:
            response = self._stub().ListDatasets(
                pb.ListDatasetsRequest(), metadata=self._metadata()
            )
        except grpc.RpcError as error:
            code, details = error.code(), error.details()  # type: ignore[attr-defined]
            raise BatchServiceError(code, details or "") from None
        return [
            {
                "name": d.name,
                "num_kept": d.num_kept,
                "num_rows": d.num_rows,
                "columns": list(d.columns),
            }
            for d in response.datasets
        ]

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
        call = self._call
        if call is not None:
            call.cancel()
        if self._channel is not None and self._pid == os.getpid():
            self._channel.close()
        self._channel = None

    def __enter__(self) -> BatchClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _session(self) -> Iterator[dict[str, Any]]:
        requests: queue.Queue[pb.SessionRequest | None] = queue.Queue()
        requests.put(self._open_message())
        for message in self._pending:
            requests.put(message)
        self._pending.clear()
        self._requests = requests
        self._call = self._session_method()(_drain(requests), metadata=self._metadata())
        converter: codec.NumpyConverter | None = None
        unacknowledged = ack_every = 0
        try:
            for data in self._call:
                response = read_response(data)
                if isinstance(response, list):
                    if converter is None or self.opened is None:
                        raise BatchServiceError(
                            grpc.StatusCode.INTERNAL, "the server sent batches before 'opened'"
                        )
                    for view in response:
                        batch = self._decode(view, converter)
                        self._received += 1
                        unacknowledged += 1
                        if unacknowledged >= ack_every or self._finished(self.opened):
                            ack = pb.Ack(count=unacknowledged, next=view.header.next)
                            requests.put(pb.SessionRequest(ack=ack))
                            unacknowledged = 0
                        try:
                            yield batch
                        except GeneratorExit:
                            self._end_early(requests, unacknowledged, view.header.next)
                            raise
                    continue
                kind = response.WhichOneof("kind")
                if kind == "opened":
                    self.opened = response.opened
                    self.job = response.opened.job
                    _warn_if_finished(response.opened)
                    schema = codec.read_schema(response.opened.arrow_schema)
                    converter = codec.NumpyConverter(schema)
                    # Credit returns at half window: the server never waits for it.
                    ack_every = max(1, response.opened.max_in_flight // 2)
                elif kind == "score_request":
                    requests.put(self._scores(response.score_request))
        finally:
            requests.put(None)
            self._requests = None
            self._call.cancel()
            self._call = None

    def _end_early(
        self,
        requests: queue.Queue[pb.SessionRequest | None],
        unacknowledged: int,
        following: pb.Position,
    ) -> None:
        """The consumer stopped: acknowledge what it received and let the server end the
        call. The server sends at most what credit remains before it sees the end of
        the requests; those batches were never yielded and are dropped here."""
        if not self.acknowledge_on_close or sys.is_finalizing():
            return  # the caller cancels (no thread may start while Python shuts down)
        if unacknowledged:
            ack = pb.Ack(count=unacknowledged, next=following)
            requests.put(pb.SessionRequest(ack=ack))
        requests.put(None)
        call = self._call
        timer = threading.Timer(_END_TIMEOUT, call.cancel)
        timer.start()
        try:
            for _ in call:
                pass
        except grpc.RpcError:
            pass  # the server's view of a session it did not finish is not the consumer's
        finally:
            timer.cancel()

    def _finished(self, opened: pb.SessionOpened) -> bool:
        """Whether the latest batch was the last of the requested epochs."""
        return (
            bool(opened.num_epochs)
            and self._next is not None
            and (self._next.epoch >= opened.num_epochs)
        )

    def _decode(self, view: BatchView, converter: codec.NumpyConverter) -> dict[str, Any]:
        message = view.header
        batch = converter.read(view.payload)
        if message.weights:
            batch["weight"] = codec.to_numpy(codec.read_stream(message.weights))["weight"]
        self._next = Position(message.next.epoch, message.next.step)
        self._last_header = message
        self._last_meta = None
        return batch

    @property
    def last_meta(self) -> BatchMeta | None:
        """Where the latest batch comes from (decoded on first access, not per batch)."""
        if self._last_meta is None and self._last_header is not None:
            message = self._last_header
            self._last_meta = BatchMeta(
                message.batch_id,
                message.position.epoch,
                message.position.step,
                message.rank,
                message.selector,
                json.loads(message.info_json or "{}"),
                {k: codec.read_npy(v) for k, v in message.info_arrays.items()},
            )
        return self._last_meta

    def _scores(self, request: pb.ScoreRequest) -> pb.SessionRequest:
        assert self.scorer is not None, "the server only asks for scores in sync mode"
        candidates = codec.to_numpy(codec.read_stream(request.candidates))
        result = self.scorer(candidates)
        columns = result if isinstance(result, dict) else {"learner_losses": result}
        feedback = _feedback_message(list(candidates["id"]), dict(columns))
        return pb.SessionRequest(scores=pb.Scores(round=request.round, feedback=feedback))

    def _open_message(self) -> pb.SessionRequest:
        config, stream = self.config, self.stream
        request = pb.OpenSession(
            dataset=config.dataset,
            selector=config.selector,
            selector_params_json=json.dumps(config.selector_params),
            batch_size=config.batch_size,
            rank=stream.rank,
            world_size=config.world_size,
            seed=config.seed,
            columns=list(stream.columns),
            job=self.job or "",
            max_in_flight=stream.max_in_flight,
            num_epochs=stream.num_epochs,
            scoring=pb.SCORING_MODE_SYNC if config.scoring == "sync" else pb.SCORING_MODE_ASYNC,
            last_batch=pb.LAST_BATCH_DROP if config.last_batch == "drop" else pb.LAST_BATCH_PARTIAL,
            score_columns=list(stream.score_columns),
            max_batches_per_message=self.max_batches_per_message,
        )
        if self._next is not None:
            request.start.CopyFrom(pb.Position(epoch=self._next.epoch, step=self._next.step))
        return pb.SessionRequest(open=request)

    def _session_method(self) -> grpc.StreamStreamMultiCallable:
        """``Session`` returning each response's raw bytes (read by `read_response`)."""
        self._stub()
        assert self._channel is not None
        return self._channel.stream_stream(
            f"/{SERVICE_NAME}/Session",
            request_serializer=pb.SessionRequest.SerializeToString,
            response_deserializer=None,
            _registered_method=True,
        )

    def _stub(self) -> pb_grpc.BatchServiceStub:
        if self._channel is None or self._pid != os.getpid():
            options = channel_options(self.max_message_bytes)
            if self.root_certificates is not None:
                credentials = grpc.ssl_channel_credentials(self.root_certificates)
                self._channel = grpc.secure_channel(self.target, credentials, options=options)
            else:
                self._channel = grpc.insecure_channel(self.target, options=options)
            self._pid = os.getpid()
        return pb_grpc.BatchServiceStub(self._channel)

    def _metadata(self) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self.token}")] if self.token else []


def check_state(state: Any, state_format: str, job: str | None) -> None:
    """Raise `ConfigError` unless ``state`` is a ``state_format`` resume token of this
    version and, when both name one, of the job ``job``."""
    if not isinstance(state, dict) or state.get("format") != state_format:
        raise ConfigError(f"not a {state_format} state: {str(state)[:80]!r}")
    if state.get("version") != STATE_VERSION:
        raise ConfigError(f"state version {state.get('version')!r}; supported: {STATE_VERSION}")
    saved = state.get("job")
    if job and saved and saved != job:
        raise ConfigError(f"the state is of job {saved!r}, this one's is {job!r}")


def _warn_if_finished(opened: pb.SessionOpened) -> None:
    """An iteration that will yield nothing is almost always a job id used again."""
    if opened.num_epochs and opened.start.epoch >= opened.num_epochs:
        LOG.warning(
            "job %r already served its %d epoch(s) to this rank: nothing to iterate. Pass "
            "another job= for a new run, or a larger num_epochs to continue this one.",
            opened.job,
            opened.num_epochs,
        )


def _drain(requests: queue.Queue[pb.SessionRequest | None]) -> Iterator[pb.SessionRequest]:
    while (message := requests.get()) is not None:
        yield message


def _feedback_message(ids: list[Any], values: dict[str, Any]) -> pb.Feedback:
    scalars = {k: float(v) for k, v in values.items() if k in SCALAR_FEEDBACK}
    vectors = {
        k: codec.vector_bytes(np.asarray(v)) for k, v in values.items() if k in VECTOR_FEEDBACK
    }
    rows = {k: _numpy(v) for k, v in values.items() if k not in scalars and k not in vectors}
    return pb.Feedback(
        rows=codec.stream_bytes(codec.feedback_batch(ids, rows)), scalars=scalars, vectors=vectors
    )


def _numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float32)
