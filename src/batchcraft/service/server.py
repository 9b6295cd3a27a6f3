"""The gRPC server: `create_server` wires the servicer, health, reflection and auth.

The servicer is thin: it parses requests into batcher configs, delegates to
`batchcraft.service.session.Session`, and turns errors into status codes via
`batchcraft.service.status`. A bad request ends its own RPC, never the server.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from batchcraft.api.v1 import batch_service_pb2 as pb
from batchcraft.api.v1 import batch_service_pb2_grpc as pb_grpc
from batchcraft.batcher.config import JobConfig, Position, StreamConfig
from batchcraft.batcher.registry import DatasetRegistry, JobRegistry
from batchcraft.errors import ConfigError
from batchcraft.service.auth import TokenAuthInterceptor
from batchcraft.service.metrics import Metrics
from batchcraft.service.provenance import ProvenanceLog
from batchcraft.service.session import Session as RankSession
from batchcraft.service.session import SessionLimits
from batchcraft.service.status import SessionLimitError, abort

LOG = logging.getLogger("batchcraft.service")
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["BatchService"].full_name
_LAST_BATCH = {
    pb.LAST_BATCH_UNSPECIFIED: "partial",
    pb.LAST_BATCH_PARTIAL: "partial",
    pb.LAST_BATCH_DROP: "drop",
}
_SCORING = {
    pb.SCORING_MODE_UNSPECIFIED: "async",
    pb.SCORING_MODE_ASYNC: "async",
    pb.SCORING_MODE_SYNC: "sync",
}


@dataclass(frozen=True)
class ServerConfig:
    """How the server listens, authenticates, limits and persists.

    Attributes:
        address: ``host:port`` to bind; port 0 picks a free port.
        checkpoint_dir: where job state is saved; None keeps it in memory.
        token: bearer token every call (except health) must carry; None disables auth.
        tls_cert: PEM certificate chain; with ``tls_key`` enables TLS.
        tls_key: PEM private key.
        max_in_flight: default, and upper bound, of unacknowledged batches per session.
        max_message_bytes: gRPC message size limit, both directions.
        checkpoint_interval: seconds between periodic checkpoints.
        sync_timeout: seconds a synchronous scoring round waits for all ranks.
        max_workers: threads serving RPCs; at most half of them serve sessions, so health
            checks and listing always find one (more sessions get RESOURCE_EXHAUSTED).
        provenance_dir: where the per-batch provenance log goes (see
            `batchcraft.service.provenance`); None disables it. The serve CLI
            defaults it to ``<checkpoint_dir>/provenance``.
        fsync: fsync checkpoint files.
        prefetch: encode each session's next batches on a background thread
            while the current message is sent (see `batchcraft.service.prefetch`).
            Off by default: on a 2-core machine shared with the trainer it costs
            more CPU per batch (thread hand-offs) than the overlap gains.
        max_batches_per_message: cap on small batches packed into one message.
    """

    address: str = "127.0.0.1:0"
    checkpoint_dir: Path | None = None
    token: str | None = None
    tls_cert: bytes | None = None
    tls_key: bytes | None = None
    max_in_flight: int = 8
    max_message_bytes: int = 256 << 20
    checkpoint_interval: float = 2.0
    sync_timeout: float = 300.0
    max_workers: int = 64
    provenance_dir: Path | None = None
    fsync: bool = True
    prefetch: bool = False
    max_batches_per_message: int = 64

    def __post_init__(self) -> None:
        if not 0 < self.max_in_flight <= 1024:
            raise ConfigError(f"max_in_flight={self.max_in_flight} must be in [1, 1024]")
        if not (1 << 20) <= self.max_message_bytes <= (2**31 - 1):
            raise ConfigError(
                f"max_message_bytes={self.max_message_bytes} must be in [1 MiB, 2 GiB)"
            )
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("tls_cert and tls_key must be given together")
        if self.checkpoint_interval <= 0 or self.sync_timeout <= 0:
            raise ConfigError(f"{self.checkpoint_interval=} and {self.sync_timeout=} must be > 0")
        if not 1 <= self.max_batches_per_message <= 1024:
            raise ConfigError(f"{self.max_batches_per_message=} must be in [1, 1024]")
        if self.max_workers < 4:
            raise ConfigError(f"max_workers={self.max_workers} must be >= 4")


def channel_options(max_message_bytes: int) -> list[tuple[str, int]]:
    """Message size limits, set explicitly on both sides (the default is 4 MiB)."""
    return [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
    ]


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
            self.metrics.inc("batchcraft_errors_total")
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
            first = next(request_iterator, None)
            if first is None or first.WhichOneof("kind") != "open":
                raise ConfigError("the first message of a session must be 'open'")
            session = self._open(first.open)
            LOG.info(
                "session %s opened: job=%s rank=%d",
                session.session_id,
                session.job.job_id,
                session.stream.rank,
            )
            yield from session.run(request_iterator, _liveness(context))
        except Exception as error:
            if not context.is_active():
                return
            self.metrics.inc("batchcraft_errors_total")
            abort(context, error)

    def ListDatasets(
        self, request: pb.ListDatasetsRequest, context: grpc.ServicerContext
    ) -> pb.ListDatasetsResponse:
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
        config = job_config(request)
        dataset = self.datasets.get(config.dataset)
        stream = StreamConfig(
            rank=request.rank,
            columns=tuple(request.columns),
            max_in_flight=min(
                request.max_in_flight or self.config.max_in_flight, self.config.max_in_flight
            ),
            num_epochs=request.num_epochs,
            start=Position(request.start.epoch, request.start.step)
            if request.HasField("start")
            else None,
            score_columns=tuple(request.score_columns),
        )
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


def job_config(request: pb.OpenSession) -> JobConfig:
    """The JobConfig an `OpenSession` asks for (raises ConfigError naming bad values)."""
    try:
        params = json.loads(request.selector_params_json or "{}")
    except json.JSONDecodeError as exc:
        raise ConfigError(f"selector_params_json is not valid JSON: {exc}") from exc
    if not isinstance(params, dict):
        raise ConfigError(f"selector_params_json must be a JSON object, got {params!r}")
    return JobConfig(
        dataset=request.dataset,
        selector=request.selector or "uniform",
        selector_params=params,
        batch_size=request.batch_size,
        world_size=request.world_size or 1,
        seed=request.seed,
        last_batch=_LAST_BATCH[request.last_batch],  # type: ignore[arg-type]
        scoring=_SCORING[request.scoring],  # type: ignore[arg-type]
    )


def serialize_response(response: pb.SessionResponse | bytes) -> bytes:
    """Serialise a `SessionResponse`; batches arrive already serialised (see `wire`)."""
    if isinstance(response, bytes):
        return response
    return response.SerializeToString()


def add_servicer(servicer: BatchServicer, server: grpc.Server) -> None:
    """Register ``servicer`` as the generated code would, but with `serialize_response`.

    The generated ``add_BatchServiceServicer_to_server`` serialises every
    response with the protobuf runtime; `Session` yields batches already
    serialised, with their Arrow payloads spliced in without copies.
    """
    handlers = {
        "Session": grpc.stream_stream_rpc_method_handler(
            servicer.Session,
            request_deserializer=pb.SessionRequest.FromString,
            response_serializer=serialize_response,
        ),
        "ListDatasets": grpc.unary_unary_rpc_method_handler(
            servicer.ListDatasets,
            request_deserializer=pb.ListDatasetsRequest.FromString,
            response_serializer=pb.ListDatasetsResponse.SerializeToString,
        ),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
    server.add_registered_method_handlers(SERVICE_NAME, handlers)


class BatchServer:
    """A started gRPC server plus its background checkpointing and metrics."""

    def __init__(
        self, server: grpc.Server, port: int, servicer: BatchServicer, health: health.HealthServicer
    ):
        self.server = server
        self.port = port
        self.servicer = servicer
        self.health = health
        self._stop = threading.Event()
        self._saver: threading.Thread | None = None

    def start(self) -> BatchServer:
        """Start serving and periodic checkpoints."""
        self.server.start()
        jobs = self.servicer.jobs
        if jobs.checkpoint_dir is not None:
            interval = self.servicer.config.checkpoint_interval
            self._saver = threading.Thread(
                target=jobs.run_periodic_saves,
                args=(interval, self._stop),
                name="checkpoints",
                daemon=True,
            )
            self._saver.start()
        return self

    def stop(self, grace: float | None = 1.0) -> None:
        """Stop accepting RPCs, end open ones after ``grace`` s, and save every job."""
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()
        self._stop.set()
        try:
            self.servicer.jobs.save_all()  # raises CheckpointSaveError naming what was lost
        finally:
            if self.servicer.provenance is not None:
                self.servicer.provenance.close()

    def wait(self) -> None:
        """Block until the server terminates."""
        self.server.wait_for_termination()


def create_server(datasets: DatasetRegistry, config: ServerConfig | None = None) -> BatchServer:
    """Build (not start) a server for ``datasets``; the bound port is ``server.port``."""
    config = config or ServerConfig()
    interceptors = [TokenAuthInterceptor(config.token)] if config.token else []
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=config.max_workers, thread_name_prefix="rpc"),
        options=[
            *channel_options(config.max_message_bytes),
            # no SO_REUSEPORT: a second server on a busy port must fail, not share its traffic
            ("grpc.so_reuseport", 0),
            # ping idle connections: a trainer host that died (no FIN) ends its sessions,
            # freeing their threads and credit, within about a minute and a half
            ("grpc.keepalive_time_ms", 60_000),
            ("grpc.keepalive_timeout_ms", 20_000),
        ],
        interceptors=interceptors,
    )
    jobs = JobRegistry(datasets, config.checkpoint_dir, fsync=config.fsync)
    servicer = BatchServicer(datasets, jobs, config)
    add_servicer(servicer, server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    try:
        if config.tls_cert is not None and config.tls_key is not None:
            credentials = grpc.ssl_server_credentials([(config.tls_key, config.tls_cert)])
            port = server.add_secure_port(config.address, credentials)
        else:
            port = server.add_insecure_port(config.address)
    except RuntimeError:  # grpc's "Failed to bind"
        port = 0
    if port == 0:
        raise ConfigError(
            f"cannot bind {config.address}: the port is in use or the host is not local"
        )
    return BatchServer(server, port, servicer, health_servicer)
