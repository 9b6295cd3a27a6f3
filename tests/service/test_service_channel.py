"""The client's channel uses gRPC's own mechanisms: its service config retries a unary call
that finds no server (a replica restarting), with backoff, and gives up with UNAVAILABLE."""

from __future__ import annotations

import socket
import threading
import time

import grpc
import pytest

from batchcraft.service import BatchClient, BatchServiceError
from batchcraft.service.client.connection import UNARY_RETRY_ATTEMPTS

pytestmark = pytest.mark.grpc


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_listing_is_retried_until_a_replica_that_starts_late_answers(start_server) -> None:  # type: ignore[no-untyped-def]
    port = _free_port()
    client = BatchClient(f"127.0.0.1:{port}", "news", batch_size=4)
    late = threading.Timer(0.3, lambda: start_server(address=f"127.0.0.1:{port}"))
    late.start()
    try:
        listed = client.list_datasets()  # no server yet: UNAVAILABLE without gRPC's retries
    finally:
        late.join()
        client.close()
    assert [d["name"] for d in listed] == ["news"]


def test_a_listing_with_no_server_ends_unavailable_after_the_retries() -> None:
    client = BatchClient(f"127.0.0.1:{_free_port()}", "news", batch_size=4)
    start = time.monotonic()
    with pytest.raises(BatchServiceError) as caught:
        client.list_datasets()
    client.close()
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    # the backoffs of UNARY_RETRY_ATTEMPTS - 1 retries (0.2 s doubling, with jitter) were
    # waited: at least a fifth of a second per retry after the first, and no hang
    assert UNARY_RETRY_ATTEMPTS >= 3
    assert 0.2 <= time.monotonic() - start < 30
