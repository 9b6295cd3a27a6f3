"""The HTTP side of ``/metrics``: a bearer token of its own, TLS, and a server thread.

The endpoint serves `prometheus_client`'s WSGI app. With a token, a request
without ``Authorization: Bearer <token>`` gets 401: the metrics token is not
the service's, so a scraper holds no secret that could open a trainer's
session. With a certificate and key the endpoint speaks HTTPS only. The TLS
handshake happens on the request's own thread, so a client that connects and
stalls holds one thread for `REQUEST_TIMEOUT_SECONDS`, not the accept loop.
"""

from __future__ import annotations

import hmac
import socket
import ssl
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
REQUEST_TIMEOUT_SECONDS = 10.0
"""How long one request (its TLS handshake included) may keep its thread waiting."""


@dataclass(frozen=True)
class Tls:
    """The endpoint's certificate chain and private key (PEM files)."""

    cert: Path
    key: Path


def bearer_protected(app: WsgiApp, token: str) -> WsgiApp:
    """``app``, answering 401 to requests without ``Authorization: Bearer <token>``."""
    expected = f"Bearer {token}".encode()

    def protected(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        given = str(environ.get("HTTP_AUTHORIZATION", "")).encode("latin-1", "replace")
        if hmac.compare_digest(given, expected):
            return app(environ, start_response)
        start_response(
            "401 Unauthorized",
            [("Content-Type", "text/plain"), ("WWW-Authenticate", 'Bearer realm="metrics"')],
        )
        return [b"missing or wrong bearer token\n"]

    return protected


class _Server(ThreadingMixIn, WSGIServer):
    """One thread per request, none of them keeping the process alive."""

    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    """No access log on stderr (the server's stderr is one JSON object per line), and a
    bounded wait on slow clients."""

    timeout = REQUEST_TIMEOUT_SECONDS

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve_wsgi(app: WsgiApp, host: str, port: int, tls: Tls | None = None) -> WSGIServer:
    """Serve ``app`` on ``host:port`` (0 picks a port) from a daemon thread; ``shutdown()``
    stops it.

    Raises:
        OSError: the address cannot be bound, or the certificate or key cannot be read.
    """
    family, address = _family(host, port)
    server_class = type("MetricsServer", (_Server,), {"address_family": family})
    server: WSGIServer = make_server(address, port, app, server_class, handler_class=_QuietHandler)
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(tls.cert, tls.key)
        except (OSError, ssl.SSLError) as error:
            server.server_close()
            raise OSError(f"cannot load {tls.cert} / {tls.key}: {error}") from None
        server.socket = context.wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server


def _family(host: str, port: int) -> tuple[socket.AddressFamily, str]:
    """The address family and address to bind ``host`` with (IPv6 hosts too)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, address = infos[0]
    return family, str(address[0])
