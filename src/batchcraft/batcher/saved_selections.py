"""Cached selections and positions as ``state.json`` holds them (`checkpoint`)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from batchcraft._files import json_default
from batchcraft.batcher.config import Position
from batchcraft.batcher.selections import GlobalSelection
from batchcraft.errors import truncated_repr


def saved_position(value: Any) -> Position:
    """A saved ``[epoch, step]``."""
    epoch, step = value
    return Position(int(epoch), int(step))


def saved_positions(value: Any, num_rows: int) -> np.ndarray:
    """Dataset positions: a 1-D int64 array within ``[0, num_rows)``."""
    positions = np.asarray(value, np.int64)
    if positions.ndim != 1:
        raise ValueError(f"positions must be a list of integers, got shape {positions.shape}")
    if positions.size and (positions.min() < 0 or positions.max() >= num_rows):
        raise ValueError(f"positions outside [0, {num_rows})")
    return positions


def selection_json(selection: GlobalSelection) -> dict[str, Any]:
    """``selection`` as JSON (per-row info arrays are left out)."""
    info = {k: v for k, v in selection.info.items() if not isinstance(v, np.ndarray)}
    return {
        "position": [selection.position.epoch, selection.position.step],
        "positions": selection.positions.tolist(),
        "weights": None if selection.weights is None else selection.weights.tolist(),
        "info": json.loads(json.dumps(info, default=json_default)),
    }


def selection_from_json(item: dict[str, Any], num_rows: int) -> GlobalSelection:
    """A selection saved by `selection_json`; KeyError, TypeError or ValueError if malformed."""
    positions = saved_positions(item["positions"], num_rows)
    weights = item["weights"]
    if weights is not None:
        weights = np.asarray(weights, np.float32)
        if weights.shape != positions.shape:
            raise ValueError(f"{len(weights)} weights for {len(positions)} selected rows")
    info = item["info"]
    if not isinstance(info, dict):
        raise TypeError(f"selection info must be an object, got {truncated_repr(info)}")
    return GlobalSelection(saved_position(item["position"]), positions, weights, info)
