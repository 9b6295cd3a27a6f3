"""The client's gRPC channel: made in the process that uses it, authenticated, and with
failed calls raised as `BatchServiceError`.

A channel does not survive a fork, so it is created on first use and again in
any new process (a DataLoader worker): a client built before the fork is safe.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import grpc

from batchcraft.api.v1 import batch_service_pb2 as pb
from batchcraft.api.v1 import batch_service_pb2_grpc as pb_grpc
from batchcraft.errors import BatchcraftError
from batchcraft.service.wire.channel import SERVICE_NAME, SESSION_METHOD, channel_options

UNARY_RETRY_ATTEMPTS = 5
"""Attempts gRPC makes at a unary call (``ListDatasets``) that fails UNAVAILABLE."""
SERVICE_CONFIG = json.dumps(
    {
        # pick_first over every address of the target (``ipv4:a,b``, a DNS name): the
        # first that connects serves, the next takes over when it goes away
        "loadBalancingConfig": [{"pick_first": {}}],
        # gRPC's own retries for the unary call: a replica restarting or failing over is
        # asked again with backoff (0.2, 0.4, 0.8, 1.6 s). A session is not retried by
        # gRPC: a replay of its first messages would start it over, so `BatchClient`
        # resumes it itself from the batches it received (`reconnect`, `route`).
        "methodConfig": [
            {
                "name": [{"service": SERVICE_NAME, "method": "ListDatasets"}],
                "retryPolicy": {
                    "maxAttempts": UNARY_RETRY_ATTEMPTS,
                    "initialBackoff": "0.2s",
                    "maxBackoff": "2s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ],
    }
)


class BatchServiceError(BatchcraftError):
    """The server answered with an error status; ``code`` is the `grpc.StatusCode`."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self.code = code
        self.details = details
        super().__init__(f"{code.name}: {details}")


def service_error(error: grpc.RpcError) -> BatchServiceError:
    """``error`` (a failed call) as the `BatchServiceError` callers see."""
    code, details = error.code(), error.details()  # type: ignore[attr-defined]
    return BatchServiceError(code, details or "")


class Connection:
    """A channel to ``target``, per process.

    Args:
        target: ``host:port`` of the server.
        token: bearer token sent with every call, if any.
        root_certificates: PEM roots to verify a TLS server (None: plaintext).
        max_message_bytes: largest message sent or accepted.
    """

    def __init__(
        self,
        target: str,
        token: str | None,
        root_certificates: bytes | None,
        max_message_bytes: int,
    ) -> None:
        self.target = target
        self.token = token
        self.root_certificates = root_certificates
        self.max_message_bytes = max_message_bytes
        self._channel: grpc.Channel | None = None
        self._pid = -1

    def open_session(self, requests: Iterator[pb.SessionRequest]) -> Any:
        """Start a ``Session`` call that sends ``requests`` and yields each response's raw
        bytes (read by `batchcraft.service.wire.response.read_response`, without copies)."""
        method = self._current_channel().stream_stream(
            SESSION_METHOD,
            request_serializer=pb.SessionRequest.SerializeToString,
            response_deserializer=None,
            _registered_method=True,
        )
        return method(requests, metadata=self.metadata())

    def list_datasets(self) -> list[dict[str, Any]]:
        """The server's registered datasets.

        Raises:
            BatchServiceError: the call failed (unreachable server, wrong token ...).
        """
        stub = pb_grpc.BatchServiceStub(self._current_channel())
        try:
            response = stub.ListDatasets(pb.ListDatasetsRequest(), metadata=self.metadata())
        except grpc.RpcError as error:
            raise service_error(error) from None
        return [
            {
                "name": d.name,
                "num_kept": d.num_kept,
                "num_rows": d.num_rows,
                "columns": list(d.columns),
            }
            for d in response.datasets
        ]

    def metadata(self) -> list[tuple[str, str]]:
        """The call metadata: the bearer token, if any."""
        return [("authorization", f"Bearer {self.token}")] if self.token else []

    def close(self) -> None:
        """Close this process's channel (a channel inherited through a fork is left alone)."""
        if self._channel is not None and self._pid == os.getpid():
            self._channel.close()
        self._channel = None

    def _current_channel(self) -> grpc.Channel:
        if self._channel is None or self._pid != os.getpid():
            # keepalive pings during a session: a replica whose host vanished (no FIN) fails
            # the call within about a minute, and the reconnect moves to the next address
            options = [*channel_options(self.max_message_bytes),
                       ("grpc.keepalive_time_ms", 60_000), ("grpc.keepalive_timeout_ms", 20_000),
                       ("grpc.service_config", SERVICE_CONFIG), ("grpc.enable_retries", 1)]  # fmt: skip
            if self.root_certificates is not None:
                credentials = grpc.ssl_channel_credentials(self.root_certificates)
                self._channel = grpc.secure_channel(self.target, credentials, options=options)
            else:
                self._channel = grpc.insecure_channel(self.target, options=options)
            self._pid = os.getpid()
        return self._channel
