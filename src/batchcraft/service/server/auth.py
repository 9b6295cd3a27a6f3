"""Bearer-token authentication as a server interceptor.

Every method except the standard health check (probes carry no secrets)
needs the metadata ``authorization: Bearer <token>``; anything else is
answered with UNAUTHENTICATED before the handler runs.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

import grpc

EXEMPT_PREFIXES = ("/grpc.health.v1.Health/",)


class TokenAuthInterceptor(grpc.ServerInterceptor):
    """Reject calls whose bearer token does not match ``token``."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("token must be a non-empty string")
        self._expected = f"Bearer {token}".encode()

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method
        if method.startswith(EXEMPT_PREFIXES):
            return continuation(handler_call_details)
        metadata = dict(handler_call_details.invocation_metadata or ())
        given = metadata.get("authorization", "")
        if isinstance(given, str):
            given = given.encode()
        if hmac.compare_digest(given, self._expected):
            return continuation(handler_call_details)
        reason = "missing bearer token" if not given else "wrong bearer token"
        return _rejecting(continuation(handler_call_details), f"{reason} for {method}")


def _rejecting(handler: grpc.RpcMethodHandler | None, message: str) -> grpc.RpcMethodHandler:
    def reject(request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    if handler is None or handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(reject)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(reject)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(reject)
    return grpc.stream_stream_rpc_method_handler(reject)
