"""The server's Prometheus metrics, with `prometheus_client`, on a registry of its own.

Label sets are bounded, and no label value is a string a client chose.
Totals and histograms are labelled by dataset and selector, whose values the
server's configuration bounds (registered datasets, registered selectors: a
session naming another is refused before it counts). Per-stream gauges
(unacknowledged batches, lag behind the job's leading rank) are labelled by
rank and by `job_label`, a hash of the job id, not the id itself: whoever can
read the metrics learns no job name, and an operator who knows one finds its
stream (``printf %s run-42 | sha256sum | cut -c1-12``). They exist only while
their session is open: at most as many as the server runs sessions, none left
behind by a job that ended.

`start_metrics_server` serves them on loopback unless told otherwise, behind
a bearer token and TLS when given (`batchcraft.service.server.metrics_http`).

Each server has its own `CollectorRegistry` (not the process-wide default), so
one process may run several servers, as the tests do.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app

from batchcraft.service.server.metrics_http import Tls, bearer_protected, serve_wsgi

TOTAL_LABELS = ("dataset", "selector")
STREAM_LABELS = ("dataset", "job", "rank")
SECONDS_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
"""From 100 us (a uniform batch) to tens of seconds (a joint selection over a large pool)."""


class Metrics:
    """The metric families of one server (thread-safe, as `prometheus_client` is)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.batches = Counter(
            "batchcraft_batches", "Batches sent to trainers.", TOTAL_LABELS, registry=registry
        )
        self.rows = Counter(
            "batchcraft_rows", "Rows sent to trainers.", TOTAL_LABELS, registry=registry
        )
        self.bytes = Counter(
            "batchcraft_bytes", "Batch payload bytes sent.", TOTAL_LABELS, registry=registry
        )
        self.feedback_rows = Counter(
            "batchcraft_feedback_rows", "Feedback rows received.", TOTAL_LABELS, registry=registry
        )
        self.fallback_batches = Counter(
            "batchcraft_feedback_fallback_batches",
            "Batches of a feedback selector drawn uniformly because the job had no feedback "
            "yet (its info says fallback_from).",
            TOTAL_LABELS,
            registry=registry,
        )
        self.made_ahead_batches = Counter(
            "batchcraft_made_ahead_batches",
            "Batches whose selection was made before it was asked for: by a look-ahead "
            "worker (made_by=worker) or an epoch plan (made_by=plan).",
            (*TOTAL_LABELS, "made_by"),
            registry=registry,
        )
        self.plan_sessions = Counter(
            "batchcraft_plan_sessions",
            "Sessions opened while the server has epoch plans, by whether one serves the "
            "session's job (outcome=used) or it selects online (outcome=not_used; the "
            "server logs plan_not_used with what differs).",
            ("outcome",),
            registry=registry,
        )
        self.selection_seconds = Histogram(
            "batchcraft_selection_seconds",
            "Seconds the selector took for one batch.",
            TOTAL_LABELS,
            buckets=SECONDS_BUCKETS,
            registry=registry,
        )
        self.batch_latency_seconds = Histogram(
            "batchcraft_batch_latency_seconds",
            "Seconds from asking for a batch to having it encoded for the wire (select, "
            "gather, IPC-encode), counting the whole message a packed batch travels in.",
            TOTAL_LABELS,
            buckets=SECONDS_BUCKETS,
            registry=registry,
        )
        self.sessions = Gauge("batchcraft_sessions", "Open sessions.", registry=registry)
        self.jobs = Gauge(
            "batchcraft_jobs_in_memory",
            "Jobs held in memory (idle and expired ones are dropped: --job-idle-seconds).",
            registry=registry,
        )
        self.errors = Counter(
            "batchcraft_errors", "Requests answered with an error.", registry=registry
        )
        self.in_flight = Gauge(
            "batchcraft_in_flight",
            "Batches sent but not acknowledged, per open stream.",
            STREAM_LABELS,
            registry=registry,
        )
        self.rank_lag = Gauge(
            "batchcraft_rank_lag_steps",
            "Steps behind the job's leading rank, per open stream.",
            STREAM_LABELS,
            registry=registry,
        )

    def stream(self, dataset: str, selector: str, job: str, rank: int) -> StreamMetrics:
        """The metrics one session of ``job``'s rank ``rank`` updates."""
        return StreamMetrics(self, dataset, selector, job, rank)

    def value(self, name: str, /, **labels: str) -> float:
        """A sample's current value, by its exposed name (0 if it has none)."""
        return self.registry.get_sample_value(name, labels) or 0.0


class StreamMetrics:
    """What one session records: into the totals, and its stream's gauges while open.

    Updates after `close` (an ack the reader thread handles as the session ends)
    are dropped, so a closed stream's gauges are never brought back.
    """

    def __init__(self, metrics: Metrics, dataset: str, selector: str, job: str, rank: int):
        self._metrics = metrics
        totals = (dataset, selector)
        self._batches = metrics.batches.labels(*totals)
        self._rows = metrics.rows.labels(*totals)
        self._bytes = metrics.bytes.labels(*totals)
        self._feedback_rows = metrics.feedback_rows.labels(*totals)
        self._fallback_batches = metrics.fallback_batches.labels(*totals)
        self._selection_seconds = metrics.selection_seconds.labels(*totals)
        self._batch_latency_seconds = metrics.batch_latency_seconds.labels(*totals)
        self._stream = (dataset, job_label(job), str(rank))
        self._totals = totals
        self._lock = threading.Lock()
        self._open = False

    def open(self) -> None:
        """The session started."""
        with self._lock:
            self._open = True
            self._metrics.sessions.inc()

    def close(self) -> None:
        """The session ended: its stream's gauges go."""
        with self._lock:
            if not self._open:
                return
            self._open = False
            self._metrics.sessions.dec()
            self._metrics.in_flight.remove(*self._stream)  # a no-op if never set
            self._metrics.rank_lag.remove(*self._stream)

    def batches_made(self, selection_seconds: Sequence[float], message_seconds: float) -> None:
        """Batches were selected (each taking ``selection_seconds``) and encoded, all of
        them in ``message_seconds``."""
        for seconds in selection_seconds:
            self._selection_seconds.observe(seconds)
            self._batch_latency_seconds.observe(message_seconds)

    def sent(self, batches: int, rows: int, payload_bytes: int, fallbacks: int = 0) -> None:
        """``batches`` batches of ``rows`` rows in all left for the client, ``fallbacks`` of
        them a feedback selector's uniform draws while no feedback existed."""
        self._batches.inc(batches)
        if fallbacks:
            self._fallback_batches.inc(fallbacks)
        self._rows.inc(rows)
        self._bytes.inc(payload_bytes)

    def made_ahead(self, made_by: Sequence[str]) -> None:
        """Count the sent batches whose selection was made ahead (``made_by`` of each)."""
        for source in made_by:
            if source != "request":
                self._metrics.made_ahead_batches.labels(*self._totals, source).inc()

    def feedback(self, rows: int) -> None:
        """Feedback on ``rows`` rows arrived."""
        self._feedback_rows.inc(rows)

    def set_in_flight(self, batches: int) -> None:
        """The stream has ``batches`` batches sent and not acknowledged."""
        with self._lock:
            if self._open:
                self._metrics.in_flight.labels(*self._stream).set(batches)

    def set_rank_lag(self, steps: int) -> None:
        """The stream is ``steps`` steps behind its job's leading rank."""
        with self._lock:
            if self._open:
                self._metrics.rank_lag.labels(*self._stream).set(steps)


def job_label(job_id: str) -> str:
    """The ``job`` label of a job's streams: the first 12 hex digits of its id's SHA-256."""
    return hashlib.sha256(job_id.encode()).hexdigest()[:12]


def start_metrics_server(
    metrics: Metrics,
    host: str,
    port: int,
    *,
    token: str | None = None,
    tls: Tls | None = None,
) -> WSGIServer:
    """Serve ``metrics`` in the Prometheus text format on ``host:port`` (0 picks a port)
    from a daemon thread; ``shutdown()`` stops it.

    Args:
        token: the bearer token every request must carry (None: no authentication).
        tls: serve HTTPS with this certificate and key (None: plain HTTP).

    Raises:
        OSError: the port cannot be bound, or the certificate or key cannot be read.
    """
    app = make_wsgi_app(metrics.registry)
    if token is not None:
        app = bearer_protected(app, token)
    return serve_wsgi(app, host, port, tls)
