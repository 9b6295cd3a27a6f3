"""Prometheus metrics in the text exposition format, without extra dependencies.

Counters and gauges with labels, a summary-style ``_sum``/``_count`` pair for
durations, and an HTTP endpoint (``/metrics``) on a daemon thread.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Labels = tuple[tuple[str, str], ...]


class Metrics:
    """A registry of labelled counters and gauges (thread-safe)."""

    def __init__(self) -> None:
        self._values: dict[str, dict[Labels, float]] = {}
        self._help: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()
        self.declare("batchcraft_batches_total", "counter", "Batches sent to trainers.")
        self.declare("batchcraft_rows_total", "counter", "Rows sent to trainers.")
        self.declare("batchcraft_bytes_total", "counter", "Batch payload bytes sent.")
        self.declare("batchcraft_selection_seconds_sum", "counter", "Time spent selecting.")
        self.declare("batchcraft_selection_seconds_count", "counter", "Selections made.")
        self.declare("batchcraft_in_flight", "gauge", "Batches sent but not acknowledged.")
        self.declare("batchcraft_rank_lag_steps", "gauge", "Steps behind the job's leading rank.")
        self.declare("batchcraft_sessions", "gauge", "Open sessions.")
        self.declare("batchcraft_feedback_rows_total", "counter", "Feedback rows received.")
        self.declare("batchcraft_errors_total", "counter", "Requests answered with an error.")

    def declare(self, name: str, kind: str, help_text: str) -> None:
        """Register a metric family (``kind``: counter or gauge)."""
        with self._lock:
            self._help[name] = (kind, help_text)
            self._values.setdefault(name, {})

    def inc(self, name: str, amount: float = 1.0, /, **labels: str) -> None:
        """Add ``amount`` to a counter (or gauge)."""
        key = tuple(sorted(labels.items()))
        with self._lock:
            family = self._values[name]
            family[key] = family.get(key, 0.0) + amount

    def set(self, name: str, value: float, /, **labels: str) -> None:
        """Set a gauge."""
        with self._lock:
            self._values[name][tuple(sorted(labels.items()))] = value

    def value(self, name: str, /, **labels: str) -> float:
        """Current value (0 if never set)."""
        with self._lock:
            return self._values[name].get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> str:
        """All metrics in the Prometheus text format."""
        lines = []
        with self._lock:
            for name, family in sorted(self._values.items()):
                kind, help_text = self._help[name]
                lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
                for labels, value in sorted(family.items()):
                    rendered = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
                    lines.append(
                        f"{name}{{{rendered}}} {value:g}" if labels else f"{name} {value:g}"
                    )
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def start_metrics_server(metrics: Metrics, host: str, port: int) -> ThreadingHTTPServer:
    """Serve ``/metrics`` on ``host:port`` (0 picks a port) from a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404, "only /metrics is served")
                return
            body = metrics.render().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    return server
