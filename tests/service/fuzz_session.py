"""Plays a fuzzed session against a server and checks every response on the way.

After each response the next actions of the script are sent, up to one that
lets the server go on (an ack or scores); once the script is out, the client
half-closes and reads to the end. Each response must be what a valid stream
holds at that point: ``opened`` first, then batches that decode against its
schema and hold kept ids only, or score requests.
"""

from __future__ import annotations

import queue
from dataclasses import dataclass, field

import grpc
import pyarrow as pa
from fuzz_requests import Action
from raw_calls import UNLIMITED, Outcome

from batchcraft.api.v1 import batch_service_pb2 as pb
from batchcraft.api.v1 import batch_service_pb2_grpc as pb_grpc
from batchcraft.service.client.feedback import feedback_message
from batchcraft.service.wire import codec


@dataclass
class Received:
    """What a session has received: its schema, batches and score requests."""

    schema: pa.Schema | None = None
    batches: list[pb.Batch] = field(default_factory=list)
    score_requests: list[pb.ScoreRequest] = field(default_factory=list)
    unacknowledged: int = 0


def request_for(action: Action, received: Received, kept: set[str]) -> pb.SessionRequest:
    """The request ``action`` stands for, given what the session received."""
    latest = received.batches[-1] if received.batches else None
    if action.kind == "ack" and latest is not None:  # what a correct client sends
        count, received.unacknowledged = max(1, received.unacknowledged), 0
        return pb.SessionRequest(ack=pb.Ack(count=count, next=latest.next))
    if action.kind in ("ack", "ack_count"):
        return pb.SessionRequest(ack=pb.Ack(count=action.count))
    if action.kind == "ack_random":
        return pb.SessionRequest(ack=pb.Ack(count=action.count, next=action.position))
    if action.kind in ("feedback", "feedback_nonfinite", "scores"):
        ids = served_ids(received, len(action.losses), kept)
        losses = [action.losses[i % len(action.losses)] for i in range(len(ids))]
        if action.kind == "feedback_nonfinite":
            losses[-1] = float("nan")
        feedback = feedback_message(ids, {"learner_losses": losses})
        if action.kind != "scores" or not received.score_requests:
            return pb.SessionRequest(feedback=feedback)
        round_id = received.score_requests[-1].round
        return pb.SessionRequest(scores=pb.Scores(round=round_id, feedback=feedback))
    if action.kind == "feedback_random":
        return pb.SessionRequest(feedback=pb.Feedback(rows=action.payload))
    if action.kind == "scores_random":
        return pb.SessionRequest(
            scores=pb.Scores(round=action.count, feedback=pb.Feedback(rows=action.payload))
        )
    assert action.kind == "open", action.kind
    return pb.SessionRequest(open=pb.OpenSession(dataset="news", batch_size=1, world_size=1))


def served_ids(received: Received, count: int, kept: set[str]) -> list[str]:
    """Ids of rows the session received (of its last score request first), else of any
    kept rows."""
    if received.score_requests:
        table = codec.read_stream(received.score_requests[-1].candidates)
        return [str(i) for i in table.column("id").to_pylist()]
    ids: list[str] = []
    for batch in reversed(received.batches):
        if len(ids) >= count or received.schema is None or "id" not in received.schema.names:
            break
        rows = codec.read_batch(batch.record_batch, received.schema)
        ids += [str(i) for i in rows.column("id").to_pylist()]
    return ids[:count] or sorted(kept)[:count]


def check_response(response: pb.SessionResponse, received: Received, kept: set[str]) -> None:
    """Fail unless ``response`` is what a valid stream holds at this point."""
    kind = response.WhichOneof("kind")
    if received.schema is None:
        assert kind == "opened", f"the first response is {kind!r}"
        received.schema = codec.read_schema(response.opened.arrow_schema)
        return
    assert kind in ("batch", "batches", "score_request"), kind
    if kind == "score_request":
        received.score_requests.append(response.score_request)
        return
    batches = [response.batch] if kind == "batch" else list(response.batches.batches)
    for batch in batches:
        rows = codec.read_batch(batch.record_batch, received.schema)
        assert rows.num_rows == batch.num_rows
        if "id" in rows.schema.names:
            assert set(rows.column("id").to_pylist()) <= kept
        received.batches.append(batch)
        received.unacknowledged += 1


def run_session(
    address: str, opening: pb.OpenSession, script: list[Action], kept: set[str], timeout: float
) -> Outcome:
    """Open a session and play ``script``: after each response, the next actions up to one
    that lets the server go on (an ack or scores); then half-close and read to the end."""
    requests: queue.Queue[pb.SessionRequest | None] = queue.Queue()
    requests.put(pb.SessionRequest(open=opening))
    pending = list(script)
    received = Received()
    with grpc.insecure_channel(address, options=UNLIMITED) as channel:
        call = pb_grpc.BatchServiceStub(channel).Session(iter(requests.get, None), timeout=timeout)
        try:
            for response in call:
                check_response(response, received, kept)
                while pending:
                    request = request_for(pending.pop(0), received, kept)
                    requests.put(request)
                    if request.WhichOneof("kind") in ("ack", "scores"):
                        break  # the server may go on: wait for what it sends
                if not pending:
                    requests.put(None)  # half-close: the session ends at its next wait
        except grpc.RpcError as error:
            return Outcome(error.code(), error.details() or "")  # type: ignore[attr-defined]
        finally:
            requests.put(None)
    return Outcome(grpc.StatusCode.OK, "", ["opened"] if received.schema is not None else [])
