"""`ServerConfig`: how the server listens, authenticates, limits and persists."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from batchcraft.batcher.config import DEFAULT_DEPTH, DEFAULT_STALENESS
from batchcraft.errors import ConfigError

MAX_WORLD_SIZE = 2**32 - 1
"""``OpenSession.world_size`` is a uint32."""
OPEN_TIMEOUT = 10.0
"""Seconds a new stream may take to send its ``open`` (at most the idle timeout)."""


@dataclass(frozen=True)
class ServerConfig:
    """How the server listens, authenticates, limits and persists.

    Attributes:
        address: ``host:port`` to bind; port 0 picks a free port.
        checkpoint_dir: where job state is saved, a path or a store's URL
            (``s3://bucket/prefix``, `batchcraft.storage`); None keeps it in memory.
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
            `batchcraft.service.server.provenance`); None disables it. The serve CLI
            defaults it to ``<checkpoint_dir>/provenance``.
        fsync: fsync checkpoint files.
        prefetch: encode each session's next batches on a background thread
            while the current message is sent (see `batchcraft.service.server.prefetch`).
            Off by default: on a 2-core machine shared with the trainer it costs
            more CPU per batch (thread hand-offs) than the overlap gains.
        max_batches_per_message: cap on small batches packed into one message.
        max_world_size: the largest ``world_size`` a session may ask for (ranks of a job:
            trainer processes times their DataLoader workers).
        selection_workers: worker processes that make selections ahead of demand
            (`batchcraft.batcher.lookahead`); 0 makes every selection on the request path.
        lookahead: steps selected ahead of a job's latest request.
        feedback_staleness: steps a feedback selector may select ahead once it has feedback.
        cache_dir: the Arrow cache the datasets were opened with (the selection workers
            map the same files); None: each worker reads the rows it selects from.
        plans: epoch plan directories (``batchcraft plan``); a job they were made for is
            served from them (`batchcraft.batcher.plans`).
        session_idle_timeout: seconds a session may wait on its client (for an ack,
            scores, or the final acks) without any request from it before the server
            ends it (UNAVAILABLE; `BatchClient` resumes by itself). A stream must send
            its ``open`` within `open_timeout` of this.
        job_idle_seconds: a job no session used for this long is saved and dropped from
            memory (reloaded by its next session); only with ``checkpoint_dir``. 0: never.
        finished_job_retention: seconds a finished job (every rank served all its epochs)
            is kept, in memory and checkpoint, before both are dropped. 0: forever.
        lease_seconds: replicas sharing ``checkpoint_dir``: a job is served by the replica
            holding its lease, which lasts this long after its latest renewal (renewed
            every third of it; `batchcraft.batcher.leases`). 0: no leases (one server).
        advertise_address: ``host:port`` where clients reach this replica, sent to those
            redirected here (None: the bound address, the host name for ``0.0.0.0``).
        torch_warm_up: import torch at start, in the background (about 120 MiB of own
            memory), so that a job's first torch selection does not wait 1.5 s for it.
    """

    address: str = "127.0.0.1:0"
    checkpoint_dir: Path | str | None = None
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
    max_world_size: int = 65536
    session_idle_timeout: float = 300.0
    selection_workers: int = 0
    lookahead: int = DEFAULT_DEPTH
    feedback_staleness: int = DEFAULT_STALENESS
    cache_dir: Path | None = None
    plans: tuple[Path, ...] = ()
    job_idle_seconds: float = 600.0
    finished_job_retention: float = 7 * 86400.0
    lease_seconds: float = 0.0
    advertise_address: str | None = None
    torch_warm_up: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.max_in_flight <= 1024:
            raise ConfigError(f"max_in_flight={self.max_in_flight} must be in [1, 1024]")
        if not (1 << 20) <= self.max_message_bytes <= (2**31 - 1):
            raise ConfigError(
                f"max_message_bytes={self.max_message_bytes} must be in [1 MiB, 2 GiB)"
            )
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("tls_cert and tls_key must be given together")
        for name in ("checkpoint_interval", "sync_timeout", "session_idle_timeout"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name}={getattr(self, name)} must be > 0")
        if not 1 <= self.max_batches_per_message <= 1024:
            raise ConfigError(f"{self.max_batches_per_message=} must be in [1, 1024]")
        if not 1 <= self.max_world_size <= MAX_WORLD_SIZE:
            raise ConfigError(f"{self.max_world_size=} must be in [1, {MAX_WORLD_SIZE}]")
        if self.selection_workers < 0 or self.lookahead <= 0 or self.feedback_staleness < 0:
            raise ConfigError(
                f"selection_workers={self.selection_workers} must be >= 0, lookahead="
                f"{self.lookahead} > 0 and feedback_staleness={self.feedback_staleness} >= 0"
            )
        for name in ("job_idle_seconds", "finished_job_retention"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"{name}={getattr(self, name)} must be >= 0 (0 = never)")
        if self.lease_seconds < 0 or (self.lease_seconds and self.checkpoint_dir is None):
            raise ConfigError(
                f"lease_seconds={self.lease_seconds} must be >= 0, and leases need a "
                "checkpoint directory shared by the replicas"
            )
        if self.max_workers < 4:
            raise ConfigError(f"max_workers={self.max_workers} must be >= 4")

    @property
    def open_timeout(self) -> float:
        """Seconds a new stream may take to send its ``open``: until then it holds an RPC
        thread, though no session slot."""
        return min(OPEN_TIMEOUT, self.session_idle_timeout)


@dataclass(frozen=True)
class SessionLimits:
    """Server-side limits every session obeys.

    Attributes:
        max_message_bytes: the gRPC message size limit.
        sync_timeout: seconds a synchronous scoring round waits.
        max_batches_per_message: cap on the batches packed into one message.
        prefetch: produce responses on a background thread (`prefetch`).
        idle_timeout: seconds the session waits on a silent client (`ServerConfig`).
    """

    max_message_bytes: int
    sync_timeout: float
    max_batches_per_message: int = 64
    prefetch: bool = False
    idle_timeout: float = 300.0
