"""`create_server`: the gRPC server with the servicer, health, reflection and auth wired in.

`BatchServer` is the started server plus its background checkpointing; tests
start it on port 0 and read the bound port from ``server.port``.
"""

from __future__ import annotations

import os
import socket
import threading
from concurrent import futures
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from batchcraft.api.v1 import batch_service_pb2 as pb
from batchcraft.batcher.ahead import AheadOfDemand
from batchcraft.batcher.checkpoint_files import check_writable
from batchcraft.batcher.checkpoint_store import CheckpointStore
from batchcraft.batcher.datasets import DatasetRegistry
from batchcraft.batcher.job_lifetimes import JobLifetimes
from batchcraft.batcher.leased_registry import LeasedJobRegistry
from batchcraft.batcher.leases import JobLeases
from batchcraft.batcher.lookahead import Lookahead
from batchcraft.batcher.lookahead_worker import DatasetSource
from batchcraft.batcher.plans import PlanInfo
from batchcraft.batcher.registry import JobRegistry
from batchcraft.errors import ConfigError
from batchcraft.selectors.hardware import warm_up
from batchcraft.service.server.auth import TokenAuthInterceptor
from batchcraft.service.server.config import ServerConfig
from batchcraft.service.server.requests import lenient
from batchcraft.service.server.servicer import BatchServicer
from batchcraft.service.wire.channel import SERVICE_NAME, channel_options


def serialize_response(response: pb.SessionResponse | bytes) -> bytes:
    """Serialise a `SessionResponse`; batches arrive already serialised (see `wire`)."""
    if isinstance(response, bytes):
        return response
    return response.SerializeToString()


def add_servicer(servicer: BatchServicer, server: grpc.Server) -> None:
    """Register ``servicer`` as the generated code would, but with `serialize_response`.

    The generated ``add_BatchServiceServicer_to_server`` serialises every
    response with the protobuf runtime; `Session` yields batches already
    serialised, with their Arrow payloads spliced in without copies. Requests
    are parsed by `lenient`, so bytes that are no valid request reach the
    handler, which refuses them as the client's error.
    """
    handlers = {
        "Session": grpc.stream_stream_rpc_method_handler(
            servicer.Session,
            request_deserializer=lenient(pb.SessionRequest),
            response_serializer=serialize_response,
        ),
        "ListDatasets": grpc.unary_unary_rpc_method_handler(
            servicer.ListDatasets,
            request_deserializer=lenient(pb.ListDatasetsRequest),
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
        # also without a checkpoint directory: finished jobs expire from memory
        self._saver = threading.Thread(
            target=self.servicer.jobs.run_periodic_saves,
            args=(self.servicer.config.checkpoint_interval, self._stop),
            name="checkpoints",
            daemon=True,
        )
        self._saver.start()
        if self.servicer.config.torch_warm_up:
            # torch is imported on a job's first coreset selection otherwise: 1.5 s
            threading.Thread(target=warm_up, name="warm-up", daemon=True).start()
        jobs = self.servicer.jobs
        if isinstance(jobs, LeasedJobRegistry):
            renewals = (self._stop, jobs.drop_lost)
            threading.Thread(
                target=jobs.leases.run, args=renewals, name="leases", daemon=True
            ).start()
        return self

    def stop(self, grace: float | None = 1.0) -> None:
        """Stop accepting RPCs, end open ones after ``grace`` s, and save every job."""
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()
        self._stop.set()
        try:
            self.servicer.jobs.save_all()  # raises CheckpointSaveError naming what was lost
        finally:
            if isinstance(self.servicer.jobs, LeasedJobRegistry):
                self.servicer.jobs.release_all()  # the other replicas take the jobs at once
            if self.servicer.provenance is not None:
                self.servicer.provenance.close()
            if self.servicer.jobs.prepare is not None:
                self.servicer.jobs.prepare.close()

    def wait(self) -> None:
        """Block until the server terminates."""
        self.server.wait_for_termination()


def create_server(datasets: DatasetRegistry, config: ServerConfig | None = None) -> BatchServer:
    """Build (not start) a server for ``datasets``; the bound port is ``server.port``.

    Raises:
        OutputError: the checkpoint or provenance directory is not writable.
        ConfigError: the address cannot be bound.
    """
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
            # and accept the clients' keepalive pings (every 60 s) while a trainer pauses
            ("grpc.http2.min_ping_interval_without_data_ms", 30_000),
        ],
        interceptors=interceptors,
    )
    port = _bind(server, config)  # before the leases, which name the port
    try:
        jobs = _job_registry(datasets, config, port)
        jobs.prepare_directory()  # raises OutputError: serving without saving would lose jobs
        if config.provenance_dir is not None:
            check_writable(config.provenance_dir, "provenance directory")
        # last: a start refused above never starts the selection workers (torch in each)
        jobs.prepare = _prepare_jobs(datasets, config)
    except BaseException:
        server.stop(None)  # the bound port
        raise
    servicer = BatchServicer(datasets, jobs, config)
    add_servicer(servicer, server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    return BatchServer(server, port, servicer, health_servicer)


def _job_registry(datasets: DatasetRegistry, config: ServerConfig, port: int) -> JobRegistry:
    """The server's jobs (their look-ahead attached by the caller once the checks pass):
    leased when replicas share the checkpoint directory."""
    settings: dict[str, Any] = dict(
        lifetimes=JobLifetimes(config.job_idle_seconds, config.finished_job_retention),
    )
    if config.checkpoint_dir is None:
        return JobRegistry(datasets, None, **settings)
    store = CheckpointStore.at(config.checkpoint_dir, fsync=config.fsync)
    if not config.lease_seconds:
        return JobRegistry(datasets, store, **settings)
    store.check_leases()  # a store without a conditional create would lease unsafely
    host = config.address.rsplit(":", 1)[0].strip("[]")
    if host in ("0.0.0.0", "::", ""):
        host = socket.getfqdn()
    leases = JobLeases(
        store.job,
        f"{socket.gethostname()}:{os.getpid()}:{port}",
        config.advertise_address or f"{host}:{port}",
        config.lease_seconds,
    )
    return LeasedJobRegistry(datasets, store, leases=leases, **settings)


def _prepare_jobs(datasets: DatasetRegistry, config: ServerConfig) -> AheadOfDemand:
    """What every new job gets: the selection workers and the epoch plans ``config`` names.

    Raises:
        ConfigError: a plan directory holds no complete plan.
    """
    plans = [PlanInfo.read(path) for path in config.plans]
    return AheadOfDemand(_lookahead(datasets, config), plans)


def _lookahead(datasets: DatasetRegistry, config: ServerConfig) -> Lookahead | None:
    """The selection workers ``config`` asks for (started now, torch imported in each)."""
    if config.selection_workers == 0:
        return None
    sources = {d.name: DatasetSource.of(d, config.cache_dir) for d in datasets}
    return Lookahead(
        sources,
        workers=config.selection_workers,
        depth=config.lookahead,
        staleness=config.feedback_staleness,
    )


def _bind(server: grpc.Server, config: ServerConfig) -> int:
    """Add ``config.address`` (with TLS if configured) to ``server``; the bound port.

    Raises:
        ConfigError: the address cannot be bound.
    """
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
    return port
