"""`BatchServicer`: the ``BatchService`` methods, thin over the batcher and `Session`.

The servicer is thin: it parses requests into batcher configs, delegates to
`batchcraft.service.server.session.Session`, and turns errors into status codes via
`batchcraft.service.server.status`. A bad request ends its own RPC, never the server.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator

import grpc

from batchcraft.api.v1 import batch_service_pb2 as pb
from batchcraft.api.v1 import batch_service_pb2_grpc as pb_grpc
from batchcraft.batcher.config import Position
from batchcraft.batcher.registry import DatasetRegistry, JobRegistry
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
from batchcraft.service.server.status import SessionLimitError, abort

LOG = logging.getLogger("batchcraft.service")


class BatchServicer(pb_grpc.BatchServiceServicer):
    """Delegates `Session` to `Session.run` and lists datasets."""

    def __init__(self, datasets: DatasetRegistry, jobs: JobRegistry, config: ServerConfig) -> None:
        self.datasets = datasets
        self.jobs = jobs
        self.config = config
        self.metrics = Metrics()
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
        )

    def Session(
        self, request_iterator: Iterator[pb.SessionRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.SessionResponse | bytes]:
        if not self._session_slots.acquire(blocking=False):
            self.metrics.errors.inc()
            abort(
                context,
                SessionLimitError(
                    f"the server runs its maximum of {self.max_sessions} sessions "
                    "(--max-workers / 2); retry later or raise --max-workers"
                ),
            )
        try:
            yield from self._session(request_iterator, context)
        finally:
            self._session_slots.release()

    def _session(
        self, request_iterator: Iterator[pb.SessionRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.SessionResponse | bytes]:
        try:
            first = decoded(next(request_iterator, None))
            if first is None or first.WhichOneof("kind") != "open":
                raise ConfigError("the first message of a session must be 'open'")
            session = self._open(first.open)
            log_event(
                LOG,
                logging.INFO,
                "session_opened",
                session=session.session_id,
                job=session.job.job_id,
                rank=session.stream.rank,
            )
            yield from session.run(request_iterator, _liveness(context))
        except Exception as error:
            if not context.is_active():
                return
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
                    num_rows=int(dataset.manifest.get("num_rows", dataset.num_rows)),
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
        job = self.jobs.get_or_create(request.job or config.default_job_id(), config)
        start = stream.start or job.cursors.get(stream.rank, Position())
        return RankSession(
            uuid.uuid4().hex,
            job,
            stream,
            start,
            self.jobs,
            self.metrics,
            self.provenance,
            self.limits,
            request.max_batches_per_message,
        )


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
