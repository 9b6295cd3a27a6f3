"""Idle sessions end, and only sessions that opened count against the cap (issue 17,
defect 7: 33 idle sessions made a legitimate client wait 23 s for RESOURCE_EXHAUSTED)."""

from __future__ import annotations

import queue
import time

import grpc
import pytest
from raw_calls import LiveSession, open_request

from batchcraft.api.v1 import batch_service_pb2 as pb
from batchcraft.api.v1 import batch_service_pb2_grpc as pb_grpc
from batchcraft.service import BatchClient
from batchcraft.service.wire.channel import SESSION_END_KEY, SESSION_IDLE

pytestmark = pytest.mark.grpc


def first_batch(address: str, job: str) -> list[str]:
    with BatchClient(address, "news", batch_size=4, columns=["id"], job=job) as client:
        return list(next(iter(client))["id"])


def test_a_session_waiting_on_a_silent_client_ends_and_frees_its_slot(start_server) -> None:  # type: ignore[no-untyped-def]
    address = start_server(session_idle_timeout=1.0, max_workers=4)  # room for 2 sessions
    stalled = [
        LiveSession(address, open_request(job=f"stall-{i}", num_epochs=0, max_in_flight=2), 15)
        for i in range(2)
    ]
    try:
        for live in stalled:
            live.batches(2)  # a full window, never acknowledged
        started = time.monotonic()
        outcomes = [live.status() for live in stalled]
        assert time.monotonic() - started < 5
        for live, outcome in zip(stalled, outcomes, strict=True):
            assert outcome.code == grpc.StatusCode.UNAVAILABLE, outcome
            assert "session idle: nothing from the client for 1 s" in outcome.details
            assert (SESSION_END_KEY, SESSION_IDLE) in tuple(live.call.trailing_metadata() or ())
        assert len(first_batch(address, "after")) == 4  # their slots are free
    finally:
        for live in stalled:
            live.close()


def test_streams_that_never_open_hold_no_session_slot(start_server) -> None:  # type: ignore[no-untyped-def]
    address = start_server(session_idle_timeout=2.0, max_workers=4)  # room for 2 sessions
    channel = grpc.insecure_channel(address)
    silent: queue.Queue[pb.SessionRequest | None] = queue.Queue()
    calls = [
        pb_grpc.BatchServiceStub(channel).Session(iter(silent.get, None), timeout=20)
        for _ in range(2)
    ]
    try:
        time.sleep(0.3)  # both streams have started on the server, sending nothing
        assert len(first_batch(address, "live")) == 4  # not RESOURCE_EXHAUSTED
        for call in calls:  # and the silent ones end once the open timeout has passed
            with pytest.raises(grpc.RpcError) as ended:
                next(iter(call))
            assert ended.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
            assert "no 'open' request within 2 s" in ended.value.details()  # type: ignore[attr-defined]
    finally:
        for call in calls:
            call.cancel()
        channel.close()


def test_a_trainer_pausing_longer_than_the_idle_timeout_resumes_by_itself(
    start_server, kept_ids: list[str]
) -> None:  # type: ignore[no-untyped-def]
    address = start_server(session_idle_timeout=0.5)
    client = BatchClient(
        address, "news", batch_size=10, columns=["id"], max_in_flight=2, job="pause"
    )
    served: list[str] = []
    for step, batch in enumerate(client):
        served += list(batch["id"])
        if step == 2:
            time.sleep(2.0)  # an evaluation: the server ends the idle session meanwhile
    client.close()
    assert sorted(served) == sorted(kept_ids)  # every kept id exactly once
