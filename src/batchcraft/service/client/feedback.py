"""Trainer feedback as `pb.Feedback`: per-row columns, scalars and vectors.

Rows (``learner_losses``, ``learner_embeddings`` ...) travel as one Arrow IPC
stream keyed by ``id``; the names in `batchcraft.dataset.fields.SCALAR_FEEDBACK`
as floats and those in ``VECTOR_FEEDBACK`` as float32 bytes. Values may be
numpy arrays, lists or torch tensors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from batchcraft.api.v1 import batch_service_pb2 as pb
from batchcraft.dataset.fields import SCALAR_FEEDBACK, VECTOR_FEEDBACK
from batchcraft.service.wire import codec

Scorer = Callable[[dict[str, Any]], "np.ndarray | dict[str, Any]"]
"""Scores a synchronous round's candidates: per-row losses, or a dict of feedback."""


def feedback_message(ids: list[Any], values: dict[str, Any]) -> pb.Feedback:
    """The feedback ``values`` of the rows ``ids`` (see the module docstring)."""
    scalars = {k: float(v) for k, v in values.items() if k in SCALAR_FEEDBACK}
    vectors = {
        k: codec.vector_bytes(np.asarray(v)) for k, v in values.items() if k in VECTOR_FEEDBACK
    }
    rows = {k: _numpy(v) for k, v in values.items() if k not in scalars and k not in vectors}
    return pb.Feedback(
        rows=codec.stream_bytes(codec.feedback_batch(ids, rows)), scalars=scalars, vectors=vectors
    )


def scores_reply(request: pb.ScoreRequest, scorer: Scorer) -> pb.SessionRequest:
    """The answer to a synchronous scoring round: ``scorer``'s feedback on its candidates."""
    candidates = codec.to_numpy(codec.read_stream(request.candidates))
    result = scorer(candidates)
    columns = result if isinstance(result, dict) else {"learner_losses": result}
    feedback = feedback_message(list(candidates["id"]), dict(columns))
    return pb.SessionRequest(scores=pb.Scores(round=request.round, feedback=feedback))


def _numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float32)
