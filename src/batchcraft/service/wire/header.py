"""A batch's header fields: where it comes from, its weights and its selector's info.

The server writes them (`batch_header`) beside the Arrow IPC payload that
`batchcraft.service.wire.response` splices in; the client reads them back
(`read_weights`, `read_info`, `read_info_arrays`). Weights travel as a
one-column IPC stream, ``info_json`` as JSON (numpy scalars as numbers),
per-row info arrays as ``.npy`` bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from batchcraft._files import json_default
from batchcraft.api.v1 import batch_service_pb2 as pb
from batchcraft.batcher.config import Position
from batchcraft.service.wire import codec

# One encoder for every batch: ``json.dumps(..., default=...)`` builds a new one per call.
_INFO_JSON = json.JSONEncoder(default=json_default)


def batch_header(
    *,
    batch_id: str,
    position: Position,
    following: Position,
    rank: int,
    num_rows: int,
    selector: str,
    weights: np.ndarray | None,
    info: dict[str, Any],
    info_arrays: Mapping[str, np.ndarray],
) -> pb.Batch:
    """The header of one rank's batch (a `pb.Batch` without ``record_batch``).

    Args:
        batch_id: the batch's id (see `batchcraft.dataset.provenance.batch_id`).
        position: the batch's step; ``following`` the rank's next one.
        rank: the rank it is for.
        num_rows: rows in the payload.
        selector: the selector that chose the rows (a fallback may differ from the job's).
        weights: per-row weights, or None when the selector does not weight rows.
        info: the selector's JSON-serialisable metrics of this batch.
        info_arrays: the selector's per-row arrays (masks ...).
    """
    return pb.Batch(
        batch_id=batch_id,
        position=pb.Position(epoch=position.epoch, step=position.step),
        rank=rank,
        num_rows=num_rows,
        weights=b"" if weights is None else _weights_bytes(weights),
        selector=selector,
        info_json=_INFO_JSON.encode(info),
        next=pb.Position(epoch=following.epoch, step=following.step),
        info_arrays={name: codec.npy_bytes(value) for name, value in info_arrays.items()},
    )


def read_weights(header: pb.Batch) -> np.ndarray | None:
    """The batch's float32 row weights, or None when it has none."""
    if not header.weights:
        return None
    weights: np.ndarray = codec.to_numpy(codec.read_stream(header.weights))["weight"]
    return weights


def read_info(header: pb.Batch) -> dict[str, Any]:
    """The selector's metrics of the batch."""
    info: dict[str, Any] = json.loads(header.info_json or "{}")
    return info


def read_info_arrays(header: pb.Batch) -> dict[str, np.ndarray]:
    """The selector's per-row arrays of the batch."""
    return {name: codec.read_npy(data) for name, data in header.info_arrays.items()}


def _weights_bytes(weights: np.ndarray) -> bytes:
    return codec.stream_bytes(pa.RecordBatch.from_pydict({"weight": pa.array(weights)}))
