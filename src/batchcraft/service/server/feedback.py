"""The server's side of feedback messages: reading them, and asking a rank for scores."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from batchcraft.api.v1 import batch_service_pb2 as pb
from batchcraft.batcher.errors import FeedbackError
from batchcraft.batcher.feedback_sequences import Numbered
from batchcraft.batcher.job import Job
from batchcraft.batcher.rounds import ScoringRound
from batchcraft.batcher.served_dataset import CuratedDataset
from batchcraft.errors import truncated_repr
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
    except _DECODE_ERRORS as exc:
        raise FeedbackError(f"cannot decode feedback rows: {_reason(exc)}") from None
    try:
        vectors = {name: codec.read_vector(data) for name, data in feedback.vectors.items()}
    except _DECODE_ERRORS as exc:
        raise FeedbackError(
            f"cannot decode feedback vectors (float32 values): {_reason(exc)}"
        ) from None
    return ids, rows, dict(feedback.scalars), vectors


def numbered_report(feedback: pb.Feedback, rank: int, sender: str) -> Numbered | None:
    """The number of a report whose client numbers them (`feedback_sequences`), else None."""
    if not sender or not feedback.sequence:
        return None
    return Numbered(rank, sender, feedback.sequence)


def saved_reports(job: Job, rank: int, sender: str, checkpointed: bool) -> int:
    """The latest of ``sender``'s reports for ``rank`` the client need not keep: saved in
    the job's checkpoint, or applied by a server without one (0: none, or not numbered)."""
    if not sender:
        return 0
    return job.feedback.confirmed(rank, sender, saved=checkpointed)


_DECODE_ERRORS = (
    pa.ArrowException,  # not IPC, a torn message (pyarrow raises OSError for those too)
    OSError,
    ValueError,  # ragged lists, strings where numbers belong, a length not a multiple of 4
    TypeError,  # structs or other nested values where numbers belong
    OverflowError,
    RecursionError,  # deeply nested list types
)
"""What decoding a client's feedback bytes raises when they are not feedback."""


def _reason(error: BaseException) -> str:
    return truncated_repr(f"{type(error).__name__}: {error}", limit=200)


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
