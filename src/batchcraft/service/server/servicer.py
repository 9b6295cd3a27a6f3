"""`BatchServicer`: the ``BatchService`` methods, thin over the batcher and `Session`.

The servicer is thin: it parses requests into batcher configs, delegates to
`batchcraft.service.server.session.Session`, and turns errors into status codes via
`batchcraft.service.server.status`. A bad request ends its own RPC, never the server.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from batchcraft.api.v1 import batch_service_pb2 as pb
from batchcraft.api.v1 import batch_service_pb2_grpc as pb_grpc
from batchcraft.batcher.config import Position
from batchcraft.batcher.datasets import DatasetRegistry
from batchcraft.batcher.errors import JobMovedError
from batchcraft.batcher.registry import JobRegistry
from batchcraft.errors import ConfigError
from batchcraft.logs import log_event
from batchcraft.service.server.config import ServerConfig, SessionLimits
from batchcraft.service.server.metrics import Metrics
from batchcraft.service.server.provenance import ProvenanceLog
from batchcraft.service.server.requests import (
    Undecodable,
    check_sizes,
    decoded,
    job_config,
    stream_config,
)
from batchcraft.service.server.session import Session as RankSession
from batchcraft.service.server.status import SessionIdleError, SessionLimitError, abort

LOG = logging.getLogger("batchcraft.service")
_POLL_SECONDS = 0.2


class BatchServicer(pb_grpc.BatchServiceServicer):
    """Delegates `Session` to `Session.run` and lists datasets."""

    def __init__(self, datasets: DatasetRegistry, jobs: JobRegistry, config: ServerConfig) -> None:
        self.datasets = datasets
        self.jobs = jobs
        self.config = config
        self.metrics = Metrics()
        self.metrics.jobs.set_function(jobs.__len__)
        self.provenance = ProvenanceLog(config.provenance_dir) if config.provenance_dir else None
        # Sessions are capped here, not with grpc's maximum_concurrent_rpcs, so that health
        # checks and ListDatasets always find a thread: at the cap they would be refused too.
        self.max_sessions = config.max_workers // 2
        self._session_slots = threading.BoundedSemaphore(self.max_sessions)
        self.limits = SessionLimits(
            config.max_message_bytes,
            config.sync_timeout,
            config.max_batches_per_message,
            config.prefetch,
            config.session_idle_timeout,
        )

    def Session(
        self, request_iterator: Iterator[pb.SessionRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.SessionResponse | bytes]:
        is_active = _liveness(context)
        try:  # a stream counts against the session cap only once it has opened
            first = first_request(request_iterator, is_active, self.config.open_timeout)
        except Exception as error:
            self._fail(context, error)
            return
        if not self._session_slots.acquire(blocking=False):
            self._fail(
                context,
                SessionLimitError(
                    f"the server runs its maximum of {self.max_sessions} sessions "
                    "(--max-workers / 2); retry later or raise --max-workers"
                ),
            )
            return  # the client had left: no status to send
        try:
            yield from self._session(first, request_iterator, context, is_active)
        finally:
            self._session_slots.release()

    def _session(
        self,
        first: pb.SessionRequest | None,
        request_iterator: Iterator[pb.SessionRequest],
        context: grpc.ServicerContext,
        is_active: Callable[[], bool],
    ) -> Iterator[pb.SessionResponse | bytes]:
        try:
            if first is None or first.WhichOneof("kind") != "open":
                raise ConfigError("the first message of a session must be 'open'")
            session = self._open(first.open)
            try:
                log_event(
                    LOG,
                    logging.INFO,
                    "session_opened",
                    session=session.session_id,
                    job=session.job.job_id,
                    rank=session.stream.rank,
                )
                yield from session.run(request_iterator, is_active)
            finally:  # the job may be retired once idle (`JobRegistry.retire`)
                finished = session.batches.exhausted
                self.jobs.close_session(session.job, session.stream.rank, finished=finished)
        except Exception as error:
            self._fail(context, error)

    def _fail(self, context: grpc.ServicerContext, error: BaseException) -> None:
        """End the RPC with ``error``'s status, unless the client has already left."""
        if not context.is_active():
            return
        if not isinstance(error, JobMovedError):  # a redirect is no error
            self.metrics.errors.inc()
        abort(context, error)

    def ListDatasets(
        self, request: pb.ListDatasetsRequest | Undecodable, context: grpc.ServicerContext
    ) -> pb.ListDatasetsResponse:
        try:
            decoded(request)
        except ConfigError as error:
            self.metrics.errors.inc()
            abort(context, error)
        infos = []
        for dataset in self.datasets:
            embedding = dataset.manifest.get("embedding") or {}
            infos.append(
                pb.DatasetInfo(
                    name=dataset.name,
                    num_rows=sum(int(m.get("num_rows", 0)) for m in dataset.manifests)
                    or dataset.num_rows,
                    num_kept=dataset.num_rows,
                    columns=dataset.column_names,
                    embedding_model=str(embedding.get("model", "")),
                    embedding_dim=int(embedding.get("dim", 0)),
                    has_pairs=bool(dataset.manifest.get("has_pairs", False)),
                )
            )
        return pb.ListDatasetsResponse(datasets=infos)

    def _open(self, request: pb.OpenSession) -> RankSession:
        check_sizes(request, self.config.max_world_size)
        config = job_config(request)
        dataset = self.datasets.get(config.dataset)
        stream = stream_config(request, self.config.max_in_flight)
        stream.check_against(config, dataset.column_names)
        job_id = request.job or config.default_job_id()
        job = self.jobs.open_session(job_id, config, stream.rank)
        if job.plan_used is not None:
            self.metrics.plan_sessions.labels("used" if job.plan_used else "not_used").inc()
        try:
            return RankSession(
                uuid.uuid4().hex,
                job,
                stream,
                stream.start or job.cursors.get(stream.rank, Position()),
                self.jobs,
                self.metrics,
                self.provenance,
                self.limits,
                request.max_batches_per_message,
                request.feedback_sender[:64],
            )
        except BaseException:
            self.jobs.close_session(job, stream.rank, finished=False)
            raise


def first_request(
    requests: Iterator[Any], is_active: Callable[[], bool], timeout: float
) -> pb.SessionRequest | None:
    """A stream's first request (None if the stream ended first, or the client left).

    Read on a thread of its own, so that a stream that sends nothing holds its RPC
    thread for ``timeout`` seconds, not forever.

    Raises:
        SessionIdleError: no request within ``timeout`` seconds.
        ConfigError: the first request's bytes are no valid request.
    """
    received: list[Any] = []
    arrived = threading.Event()

    def read() -> None:
        try:
            received.append(next(requests, None))
        except Exception:  # the RPC ended (grpc raises on cancellation): nothing came
            received.append(None)
        finally:
            arrived.set()

    threading.Thread(target=read, name="open", daemon=True).start()
    deadline = time.monotonic() + timeout
    while not arrived.wait(_POLL_SECONDS):
        if not is_active():
            return None
        if time.monotonic() > deadline:
            raise SessionIdleError(f"no 'open' request within {timeout:g} s of the stream's start")
    request: pb.SessionRequest | None = decoded(received[0])
    return request


def _liveness(context: grpc.ServicerContext) -> Callable[[], bool]:
    """A cheap ``is_active`` for the session's threads, which poll it once per batch.

    ``context.is_active()`` takes the RPC's lock, which gRPC's own threads hold
    while a message is sent, so polling it costs a lock hand-off per call; an
    event set by the termination callback answers the same question without it.
    """
    ended = threading.Event()
    if not context.add_callback(ended.set):  # already terminated
        ended.set()
    return lambda: not ended.is_set()
