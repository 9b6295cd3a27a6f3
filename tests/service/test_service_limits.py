"""Client-chosen sizes and values the server bounds: every bad request is the client's
error with a short message, never INTERNAL, and the server lives on."""

from __future__ import annotations

import json
import time
from pathlib import Path

import grpc
import pytest
from raw_calls import LiveSession, open_request, session

from batchcraft.api.v1 import batch_service_pb2 as pb
from batchcraft.batcher.checkpoint import job_directory
from batchcraft.batcher.datasets import DatasetRegistry
from batchcraft.batcher.served_dataset import CuratedDataset
from batchcraft.service import BatchClient, BatchServiceError, ServerConfig, create_server

pytestmark = pytest.mark.grpc
HUGE = "x" * (1 << 20)
LONG = "x" * 60_000  # within the 64 KiB of selector_params_json
INVALID = grpc.StatusCode.INVALID_ARGUMENT


def served_normally(address: str) -> bool:
    outcome = session(address, [open_request(num_epochs=1, columns=["id"])])
    return outcome.code == grpc.StatusCode.OK and outcome.kinds[0] == "opened"


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"dataset": HUGE}, grpc.StatusCode.NOT_FOUND),
        ({"selector": HUGE}, INVALID),
        ({"columns": ["id", HUGE]}, INVALID),
        ({"score_columns": [HUGE]}, INVALID),
        ({"selector": "coreset", "selector_params_json": json.dumps({"features": LONG})}, INVALID),
        ({"selector_params_json": json.dumps({LONG: 1})}, INVALID),
        ({"selector_params_json": json.dumps([LONG])}, INVALID),
    ],
)
def test_errors_echo_client_values_truncated(
    address: str, fields: dict, code: grpc.StatusCode
) -> None:
    """A 1 MB name made RESOURCE_EXHAUSTED (the echo passed gRPC's metadata limit): issue 17, 10."""
    outcome = session(address, [open_request(**fields)])
    assert (outcome.code, outcome.kinds) == (code, [])
    assert len(outcome.details) < 500 and "…" in outcome.details
    assert served_normally(address)


def test_feedback_errors_echo_ids_truncated(address: str) -> None:
    from batchcraft.service.client.feedback import feedback_message

    feedback = feedback_message([HUGE], {"learner_losses": [1.0]})
    outcome = session(
        address, [open_request(num_epochs=0, max_in_flight=1), pb.SessionRequest(feedback=feedback)]
    )
    assert outcome.code == INVALID and "not served" in outcome.details
    assert len(outcome.details) < 500


def deep_json(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    ("fields", "code", "message"),
    [
        ({"last_batch": 99}, INVALID, "last_batch=99"),
        ({"scoring": 77}, INVALID, "scoring=77"),
        ({"selector_params_json": '{"a": ' + deep_json(30_000) + "}"}, INVALID, "nested"),
        (
            {
                "selector": "coreset",
                "selector_params_json": '{"pool_multiplier": 1' + "0" * 5000 + "}",
            },
            INVALID,
            "selector_params_json",
        ),
        (
            {
                "selector": "coreset",
                "selector_params_json": '{"pool_multiplier": 1' + "0" * 4000 + "}",
            },
            INVALID,
            "pool_multiplier",
        ),
        (
            {"start": pb.Position(epoch=2**64 - 1, step=2**64 - 1)},
            grpc.StatusCode.OUT_OF_RANGE,
            "start",
        ),
        (
            {"selector": "hard_negative", "batch_size": 200, "last_batch": pb.LAST_BATCH_DROP},
            INVALID,
            "last_batch='drop'",
        ),
        ({"batch_size": 200, "last_batch": pb.LAST_BATCH_DROP}, INVALID, "last_batch='drop'"),
    ],
)
def test_client_faults_are_not_internal(
    address: str, fields: dict, code: grpc.StatusCode, message: str
) -> None:
    """Each of these was INTERNAL (KeyError, RecursionError, ValueError, OverflowError,
    "Value out of range", IndexError): issue 17, defect 5."""
    outcome = session(address, [open_request(num_epochs=2, **fields)])
    assert outcome.code == code, outcome.details
    assert message in outcome.details
    assert served_normally(address)


@pytest.mark.parametrize(
    "rows",
    [
        b"\xff" * (4 << 20),  # not Arrow IPC at all
        b"\xff\xff\xff\xff\x10\x00\x00\x00" + b"\x00" * 64,  # a torn IPC message
    ],
    ids=["garbage", "torn"],
)
def test_undecodable_feedback_is_invalid_argument(address: str, rows: bytes) -> None:
    feedback = pb.SessionRequest(feedback=pb.Feedback(rows=rows))
    outcome = session(address, [open_request(num_epochs=0, max_in_flight=1), feedback])
    assert outcome.code == INVALID and "cannot decode feedback" in outcome.details
    assert served_normally(address)


def ipc_stream(**columns: object) -> bytes:
    import pyarrow as pa

    from batchcraft.service.wire import codec

    return codec.stream_bytes(pa.RecordBatch.from_pydict(columns))


@pytest.mark.parametrize(
    "rows",
    [
        {"id": ["a"], "learner_losses": ["not a number"]},
        {"id": ["a"], "learner_losses": [{"nested": 1.0}]},
        {"id": ["a", "b"], "learner_embeddings": [[1.0], [1.0, 2.0]]},  # ragged
        {"identifier": ["a"]},
    ],
    ids=["strings", "structs", "ragged", "no-id"],
)
def test_feedback_of_the_wrong_shape_is_invalid_argument(address: str, rows: dict) -> None:
    feedback = pb.SessionRequest(feedback=pb.Feedback(rows=ipc_stream(**rows)))
    outcome = session(address, [open_request(num_epochs=0, max_in_flight=1), feedback])
    assert outcome.code == INVALID, outcome.details
    assert served_normally(address)


@pytest.mark.parametrize(
    ("method", "payload"),
    [
        ("/batchcraft.v1.BatchService/Session", b"\xff\xff\xff"),
        ("/batchcraft.v1.BatchService/Session", b"\x0a\x09\x0a\x07new"),  # open, cut short
        ("/batchcraft.v1.BatchService/ListDatasets", b"\xff\xff\xff"),
    ],
)
def test_undecodable_request_bytes_are_invalid_argument(
    address: str, method: str, payload: bytes
) -> None:
    """grpcio answered INTERNAL "Exception deserializing request!": issue 17, defect 5."""
    from raw_calls import raw_bytes_call

    outcome = raw_bytes_call(address, method, [payload])
    assert outcome.code == INVALID and "not a valid" in outcome.details, outcome
    assert served_normally(address)


def test_undecodable_request_after_open_is_invalid_argument(address: str) -> None:
    from raw_calls import raw_bytes_call

    opening = open_request(num_epochs=0, max_in_flight=1).SerializeToString()
    outcome = raw_bytes_call(address, "/batchcraft.v1.BatchService/Session", [opening, b"\xff"])
    assert outcome.code == INVALID and "not a valid" in outcome.details, outcome


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"world_size": 2**32 - 1}, "max_world_size=65536"),
        ({"job": "j" * 257}, "at most 256"),
        ({"selector": "s" * 257}, "at most 256"),
        ({"columns": ["id"] * 1025}, "at most 1024"),
        ({"score_columns": ["c" * 300]}, "at most 256"),
        ({"selector_params_json": json.dumps({"a": "x" * (64 << 10)})}, "at most 65536"),
        ({"selector_params_json": '{"a": ' + deep_json(20) + "}"}, "deeper than 8"),
    ],
)
def test_sizes_a_client_sends_are_bounded(address: str, fields: dict, message: str) -> None:
    """world_size=2^32-1 with one ack pinned a CPU, stopped every job's checkpoints and
    blocked shutdown: issue 17, defect 1."""
    acknowledge = pb.SessionRequest(ack=pb.Ack(count=1, next=pb.Position(epoch=0, step=1)))
    outcome = session(address, [open_request(batch_size=1, **fields), acknowledge], timeout=10)
    assert outcome.code == INVALID, outcome
    assert message in outcome.details and len(outcome.details) < 500
    assert served_normally(address)


def test_the_world_size_bound_is_the_servers(start_server) -> None:  # type: ignore[no-untyped-def]
    address = start_server(max_world_size=4)
    assert session(address, [open_request(world_size=4, rank=3, num_epochs=1)]).code.name == "OK"
    outcome = session(address, [open_request(world_size=5)])
    assert outcome.code == INVALID and "max_world_size=4 (--max-world-size)" in outcome.details


def test_a_session_at_the_largest_world_size_leaves_the_server_responsive(
    curated_dir: Path, tmp_path: Path
) -> None:
    """The scenario of defect 1 at the bound: acks stay cheap, other jobs keep being
    checkpointed, and shutdown ends within its grace period with the session open."""
    checkpoints = tmp_path / "state"
    registry = DatasetRegistry([CuratedDataset.open(curated_dir, "news")])
    config = ServerConfig(fsync=False, checkpoint_dir=checkpoints, checkpoint_interval=0.1)
    server = create_server(registry, config).start()
    address = f"127.0.0.1:{server.port}"
    wide = open_request(batch_size=1, world_size=65536, job="wide", num_epochs=0, max_in_flight=1)
    live = LiveSession(address, wide)
    try:
        (batch,) = live.batches(1)
        live.send(pb.SessionRequest(ack=pb.Ack(count=1, next=batch.next)))
        live.batches(1)  # the ack came back as credit
        with BatchClient(address, "news", batch_size=10, columns=["id"], job="other") as client:
            assert sum(len(b["id"]) for b in client) == 101
        state = job_directory(checkpoints, "other") / "state.json"
        deadline = time.monotonic() + 10
        while '"0": [1, 0]' not in (state.read_text() if state.exists() else ""):
            assert time.monotonic() < deadline, "the other job's checkpoint was never updated"
            time.sleep(0.05)
        started = time.monotonic()
        server.stop(grace=1.0)
        assert time.monotonic() - started < 3.0
    finally:
        live.close()
        server.stop(grace=0)


def test_world_size_zero_is_refused_not_taken_for_one(address: str) -> None:
    """world_size=0 was served as 1: issue 17, defect 6."""
    outcome = session(address, [open_request(world_size=0)])
    assert outcome.code == INVALID and "world_size=0" in outcome.details


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"pool_multiplier": True}, "pool_multiplier=True must be a number"),
        ({"adam_betas": [0.9]}, "must hold exactly 2 values"),
    ],
)
def test_selector_parameters_of_the_wrong_type_are_refused(
    address: str, params: dict, message: str
) -> None:
    """Both were accepted (true as the number 1, one beta as a pair): issue 17, defect 6."""
    fields = {"selector": "coreset", "selector_params_json": json.dumps(params)}
    outcome = session(address, [open_request(**fields)])
    assert outcome.code == INVALID and message in outcome.details


@pytest.mark.parametrize("loss", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_losses_are_refused_naming_column_and_row(
    address: str, kept_ids: list[str], loss: float
) -> None:
    """NaN was stored as "not reported", inf as a loss: issue 17, defect 6."""
    client = BatchClient(address, "news", batch_size=4, columns=["id"], max_in_flight=1, job="nan")
    with pytest.raises(BatchServiceError) as caught:
        for batch in client:
            client.report(batch["id"], losses=[1.0, loss, 2.0, 3.0])
    client.close()
    assert caught.value.code == INVALID
    assert "feedback 'learner_losses' has a NaN or infinite value in row 1" in str(caught.value)
