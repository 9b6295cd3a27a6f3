"""Acks are checked against what the session sent: a client cannot move its job's cursor,
its provenance log or its credit to positions it never received (issue 17, defect 2)."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from raw_calls import LiveSession, open_request, session

from batchcraft.api.v1 import batch_service_pb2 as pb

pytestmark = pytest.mark.grpc
FAR = pb.Position(epoch=2**64 - 1, step=2**64 - 1)


def ack(count: int, following: pb.Position | None = None) -> pb.SessionRequest:
    message = pb.Ack(count=count)
    if following is not None:
        message.next.CopyFrom(following)
    return pb.SessionRequest(ack=message)


def cursor(address: str, job: str) -> tuple[int, int]:
    """Where a session of ``job`` opened without a start begins (the job's cursor)."""
    with LiveSession(address, open_request(job=job, num_epochs=0, max_in_flight=1)) as live:
        opened = live.receive().opened
        return opened.start.epoch, opened.start.step


@pytest.mark.parametrize(
    ("acknowledgement", "message"),
    [
        (lambda sent: ack(1, FAR), "not the position after a batch"),
        (lambda sent: ack(1, pb.Position(epoch=0, step=5)), "not the position after a batch"),
        (lambda sent: ack(1, pb.Position(epoch=3, step=0)), "not the position after a batch"),
        (lambda sent: ack(3, sent.next), "3 batches"),
        (lambda sent: ack(2), "2 batches"),
    ],
    ids=["2^64", "a step not sent", "a later epoch", "count above in flight", "count only"],
)
def test_an_ack_beyond_what_was_sent_is_refused_and_changes_nothing(
    start_server, tmp_path: Path, acknowledgement, message: str
) -> None:  # type: ignore[no-untyped-def]
    provenance = tmp_path / "provenance"
    address = start_server(provenance_dir=provenance)
    with LiveSession(address, open_request(job="acks", num_epochs=0, max_in_flight=1)) as live:
        (sent,) = live.batches(1)
        live.send(acknowledgement(sent))
        outcome = live.outcome()
    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT, outcome
    assert message in outcome.details
    assert cursor(address, "acks") == (0, 0)  # the cursor did not move
    assert not any(path.stat().st_size for path in provenance.rglob("*.jsonl"))
    # and the job serves from its start: nothing was skipped
    outcome = session(address, [open_request(job="acks", num_epochs=1, columns=["id"])])
    assert outcome.code == grpc.StatusCode.OK


def test_acks_of_what_was_sent_move_the_cursor(start_server) -> None:  # type: ignore[no-untyped-def]
    address = start_server()
    with LiveSession(address, open_request(job="fine", num_epochs=0, max_in_flight=2)) as live:
        first, _ = live.batches(2)
        live.send(ack(1, first.next))
        (third,) = live.batches(1)  # the ack's credit came back
        live.send(ack(2, third.next))
        live.batches(2)
        live.send(ack(1, third.next))  # the latest position again, for the fourth batch
        live.batches(1)
    assert cursor(address, "fine") == (third.next.epoch, third.next.step)
