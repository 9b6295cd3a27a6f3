"""An epoch plan's selections as Parquet rows: written by ``batchcraft plan``
(`selection_row`), read by a server (`PlanTable`).

A server reads a plan's rows once and every job served from the plan shares them
(`PlanTable.of`): each new job used to read and decode the whole plan again when its
session opened, which for 628 selections of ``hard_negative`` (with a false-negative
mask per batch) cost more than serving them. Positions and weights are numpy views of
the Arrow columns; a selection's info is decoded from its JSON when it is taken, so a
plan's millions of positions are never Python objects and its masks are unpacked one
batch at a time.
"""

from __future__ import annotations

import base64
import json
import math
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from batchcraft.batcher.config import Position
from batchcraft.batcher.selections import GlobalSelection
from batchcraft.errors import ConfigError

PLAN_FILE = "plan.json"
SELECTIONS_DIR = "selections.parquet"
SELECTIONS_SCHEMA = pa.schema(
    [
        ("epoch", pa.int32()),
        ("step", pa.int32()),
        ("positions", pa.list_(pa.int64())),
        ("weights", pa.list_(pa.float32())),
        ("info", pa.string()),
    ]
)


def selection_row(selection: GlobalSelection) -> dict[str, Any]:
    """One Parquet row of ``selection`` (`SELECTIONS_SCHEMA`)."""
    info = {k: _json_value(v) for k, v in selection.info.items()}
    weights = None if selection.weights is None else selection.weights.astype(np.float32).tolist()
    return {"epoch": selection.position.epoch, "step": selection.position.step,
            "positions": selection.positions.tolist(), "weights": weights,
            "info": json.dumps(info, sort_keys=True)}  # fmt: skip


class PlanTable:
    """The selections of the plan at ``path``, read from its Parquet files."""

    _shared: ClassVar[dict[tuple[str, int], PlanTable]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, path: Path) -> None:
        table = pq.read_table(path / SELECTIONS_DIR, schema=SELECTIONS_SCHEMA).combine_chunks()
        self._positions, self._weights = (
            _rows_of(table.column(name).chunk(0)) for name in ("positions", "weights")
        )
        epochs, steps = table.column("epoch").to_pylist(), table.column("step").to_pylist()
        self._index = {
            Position(e, s): i for i, (e, s) in enumerate(zip(epochs, steps, strict=True))
        }
        self._infos: list[str] = table.column("info").to_pylist()

    @classmethod
    def of(cls, path: Path) -> PlanTable:
        """The table of the plan at ``path``, read on the first call and shared by every
        later one (a rewritten plan, whose ``plan.json`` is newer, is read again)."""
        key = (str(path), (path / PLAN_FILE).stat().st_mtime_ns)
        with cls._shared_lock:
            found = cls._shared.get(key)
            if found is None:
                found = cls._shared[key] = cls(path)
            return found

    def __len__(self) -> int:
        return len(self._index)

    def __iter__(self) -> Iterator[Position]:
        return iter(self._index)

    def positions(self, position: Position) -> np.ndarray | None:
        """The dataset positions selected at ``position``, None when the plan lacks it."""
        index = self._index.get(position)
        return None if index is None else self._positions[index]

    def epoch(self, epoch: int, steps: int) -> list[np.ndarray]:
        """The positions selected at each of the ``steps`` steps of ``epoch``.

        Raises:
            ConfigError: the plan lacks one of them.
        """
        planned = [self.positions(Position(epoch, step)) for step in range(steps)]
        missing = [step for step, positions in enumerate(planned) if positions is None]
        if missing:
            raise ConfigError(f"the epoch plan lacks epoch {epoch}'s steps {missing[:5]}")
        return planned  # type: ignore[return-value]

    def selection(self, position: Position) -> GlobalSelection | None:
        """The whole selection at ``position`` (its info decoded now), None when the plan
        lacks it."""
        index = self._index.get(position)
        if index is None:
            return None
        chosen = self._positions[index]
        assert chosen is not None  # positions are never null (`check_selections`)
        info = {k: _from_json(v) for k, v in json.loads(self._infos[index]).items()}
        return GlobalSelection(position, chosen, self._weights[index], info, made_by="plan")


def read_selections(path: Path) -> dict[Position, GlobalSelection]:
    """Every selection of the plan at ``path``, by position (read afresh)."""
    table = PlanTable(path)
    return {position: table.selection(position) for position in table}  # type: ignore[misc]


def _rows_of(column: pa.ListArray) -> list[np.ndarray | None]:
    """Each row of a list column as a numpy view of its values (None for a null row)."""
    values = column.flatten().to_numpy(zero_copy_only=False)
    offsets = column.offsets.to_numpy() - column.offsets[0].as_py()
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    return [values[offsets[i] : offsets[i + 1]] if valid[i] else None for i in range(len(column))]


def _json_value(value: Any) -> Any:
    if isinstance(value, np.ndarray) and value.dtype == np.bool_:  # masks: a bit per entry
        bits = base64.b64encode(np.packbits(value.reshape(-1)).tobytes()).decode("ascii")
        return {"__bits__": bits, "shape": list(value.shape)}
    if isinstance(value, np.ndarray):
        return {"__array__": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, dict) and "__bits__" in value:
        shape = tuple(value["shape"])
        packed = np.frombuffer(base64.b64decode(value["__bits__"]), dtype=np.uint8)
        return np.unpackbits(packed, count=math.prod(shape)).astype(bool).reshape(shape)
    if isinstance(value, dict) and "__array__" in value:
        return np.asarray(value["__array__"], dtype=value["dtype"])
    return value
