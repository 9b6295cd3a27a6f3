"""The server's side of feedback messages: reading them, and asking a rank for scores."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from batchcraft.api.v1 import batch_service_pb2 as pb
from batchcraft.batcher.errors import FeedbackError
from batchcraft.batcher.rounds import ScoringRound
from batchcraft.batcher.served_dataset import CuratedDataset
from batchcraft.service.wire import codec


def decode_feedback(
    feedback: pb.Feedback,
) -> tuple[list[str], dict[str, np.ndarray], dict[str, float], dict[str, np.ndarray]]:
    """The ids, per-row arrays, scalars and vectors of a feedback message.

    Raises:
        FeedbackError: the rows or vectors cannot be decoded.
    """
    try:
        ids, rows = codec.read_feedback(codec.read_stream(feedback.rows))
    except (pa.ArrowException, ValueError) as exc:
        raise FeedbackError(f"cannot decode feedback rows: {exc}") from exc
    try:
        vectors = {name: codec.read_vector(data) for name, data in feedback.vectors.items()}
    except ValueError as exc:
        raise FeedbackError(f"cannot decode feedback vectors (float32 values): {exc}") from exc
    return ids, rows, dict(feedback.scalars), vectors


def score_request(
    dataset: CuratedDataset, scoring: ScoringRound, rank: int, columns: tuple[str, ...]
) -> pb.SessionResponse:
    """Ask rank ``rank`` to score its share of ``scoring``'s candidates (``id`` first, then
    ``columns``)."""
    names = ["id", *[column for column in columns if column != "id"]]
    rows = dataset.rows(scoring.slice_for(rank), names)
    position = pb.Position(epoch=scoring.position.epoch, step=scoring.position.step)
    request = pb.ScoreRequest(
        round=scoring.round_id, position=position, candidates=codec.stream_bytes(rows)
    )
    return pb.SessionResponse(score_request=request)
