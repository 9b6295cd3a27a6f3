"""Raw gRPC calls for tests that send what `BatchClient` never would.

`BatchClient` validates its arguments before anything reaches the wire, so the
tests of the server's own checks (and the fuzz test) talk protobuf, or bytes,
through a plain channel.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator
from dataclasses import dataclass, field

import grpc

from batchcraft.api.v1 import batch_service_pb2 as pb
from batchcraft.api.v1 import batch_service_pb2_grpc as pb_grpc

SESSION_METHOD = "/batchcraft.v1.BatchService/Session"
LIST_METHOD = "/batchcraft.v1.BatchService/ListDatasets"
UNLIMITED = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]


def open_request(**fields: object) -> pb.SessionRequest:
    """An `open` request: a valid small session of ``news`` unless ``fields`` say otherwise."""
    values: dict[str, object] = {"dataset": "news", "batch_size": 4, "world_size": 1}
    values.update(fields)
    return pb.SessionRequest(open=pb.OpenSession(**values))  # type: ignore[arg-type]


@dataclass
class Outcome:
    """How a call ended: its status code and details, and the kinds of responses before it."""

    code: grpc.StatusCode
    details: str
    kinds: list[str] = field(default_factory=list)


def session(address: str, requests: list[pb.SessionRequest], timeout: float = 20.0) -> Outcome:
    """Send ``requests`` (then half-close) and read every response."""
    kinds: list[str] = []
    with grpc.insecure_channel(address, options=UNLIMITED) as channel:
        call = pb_grpc.BatchServiceStub(channel).Session(iter(requests), timeout=timeout)
        try:
            kinds.extend(str(response.WhichOneof("kind")) for response in call)
        except grpc.RpcError as error:
            return Outcome(error.code(), error.details() or "", kinds)  # type: ignore[attr-defined]
    return Outcome(grpc.StatusCode.OK, "", kinds)


def raw_bytes_call(
    address: str, method: str, payloads: list[bytes], timeout: float = 20.0
) -> Outcome:
    """Send ``payloads`` as they are (no protobuf encoding) to ``method``."""
    identity = bytes
    with grpc.insecure_channel(address, options=UNLIMITED) as channel:
        try:
            if method == LIST_METHOD:
                call = channel.unary_unary(method, identity, identity)
                call(payloads[0], timeout=timeout)
                return Outcome(grpc.StatusCode.OK, "")
            stream = channel.stream_stream(method, identity, identity)
            count = sum(1 for _ in stream(iter(payloads), timeout=timeout))
            return Outcome(grpc.StatusCode.OK, "", ["response"] * count)
        except grpc.RpcError as error:
            return Outcome(error.code(), error.details() or "")  # type: ignore[attr-defined]


class LiveSession:
    """A session whose requests the test sends one at a time, reading responses as it goes."""

    def __init__(self, address: str, first: pb.SessionRequest, timeout: float = 30.0) -> None:
        self.channel = grpc.insecure_channel(address, options=UNLIMITED)
        self._requests: queue.Queue[pb.SessionRequest | None] = queue.Queue()
        self._requests.put(first)
        stub = pb_grpc.BatchServiceStub(self.channel)
        self.call = stub.Session(iter(self._requests.get, None), timeout=timeout)
        self._responses: Iterator[pb.SessionResponse] = iter(self.call)

    def send(self, request: pb.SessionRequest) -> None:
        self._requests.put(request)

    def receive(self) -> pb.SessionResponse:
        return next(self._responses)

    def batches(self, count: int) -> list[pb.Batch]:
        """The next ``count`` batches (unpacked), skipping other responses."""
        found: list[pb.Batch] = []
        while len(found) < count:
            response = self.receive()
            if response.HasField("batch"):
                found.append(response.batch)
            elif response.HasField("batches"):
                found.extend(response.batches.batches)
        return found

    def status(self) -> Outcome:
        """Read on until the call ends, the requests left open (the client stays)."""
        try:
            for _ in self._responses:
                pass
        except grpc.RpcError as error:
            return Outcome(error.code(), error.details() or "")  # type: ignore[attr-defined]
        return Outcome(grpc.StatusCode.OK, "")

    def outcome(self) -> Outcome:
        """Half-close and wait for the status."""
        self._requests.put(None)
        return self.status()

    def close(self) -> None:
        self._requests.put(None)
        self.call.cancel()
        self.channel.close()

    def __enter__(self) -> LiveSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
