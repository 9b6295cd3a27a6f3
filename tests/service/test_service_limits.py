"""Client-chosen sizes and values the server bounds: every bad request is the client's
error with a short message, never INTERNAL, and the server lives on."""

from __future__ import annotations

import json

import grpc
import pytest
from raw_calls import open_request, session

from batchcraft.api.v1 import batch_service_pb2 as pb

pytestmark = pytest.mark.grpc
HUGE = "x" * (1 << 20)
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
        ({"selector": "coreset", "selector_params_json": json.dumps({"features": HUGE})}, INVALID),
        ({"selector_params_json": json.dumps({HUGE: 1})}, INVALID),
        ({"selector_params_json": json.dumps([HUGE])}, INVALID),
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
