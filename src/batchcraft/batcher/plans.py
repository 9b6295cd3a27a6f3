"""Epoch plans: whole epochs of selections computed offline, served as they are.

``batchcraft plan`` (`batchcraft.planning`) computes the selections of a job
whose selector ignores feedback for some epochs, on Spark, and writes them to
a plan directory:

* ``plan.json``: what the plan is for (`PlanKey`: the dataset's fingerprint,
  the selector and its parameters, the global batch size, seed and last-batch
  rule) and how many epochs it holds; written last, so a directory without it
  is no plan (a crashed run leaves nothing a server would use);
* ``selections.parquet/``: one row per global step: ``epoch``, ``step``,
  ``positions`` (the dataset positions of the kept rows, in batch order),
  ``weights`` (null when the selector does not weight) and ``info`` (the
  selection's info as JSON).

``batchcraft serve --plans PLAN ...`` serves a job from a plan when the job's
key equals the plan's (`PlanKey.of`); world size does not matter (ranks take
contiguous parts of each global selection). Past the plan's epochs, or once the
trainer reports feedback the selector uses (``coreset`` with gradient
sketches), the job selects online again. A plan holds exactly the selections
online selection makes with the same seed: workers run the same `Job` code.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from batchcraft.batcher.checkpoint import dataset_fingerprint
from batchcraft.batcher.config import Position
from batchcraft.batcher.job import Job
from batchcraft.batcher.selections import GlobalSelection, SelectionSource
from batchcraft.errors import ConfigError
from batchcraft.logs import log_event

LOG = logging.getLogger("batchcraft.batcher")
PLAN_FILE = "plan.json"
SELECTIONS_DIR = "selections.parquet"
PLAN_VERSION = 1
SELECTIONS_SCHEMA = pa.schema(
    [
        ("epoch", pa.int32()),
        ("step", pa.int32()),
        ("positions", pa.list_(pa.int64())),
        ("weights", pa.list_(pa.float32())),
        ("info", pa.string()),
    ]
)


@dataclass(frozen=True)
class PlanKey:
    """What makes two jobs' selections equal: a plan serves jobs of its key only."""

    dataset_fingerprint: str
    selector: str
    selector_params: str  # canonical JSON
    global_batch_size: int
    seed: int
    last_batch: str

    @classmethod
    def of(cls, job: Job) -> PlanKey:
        config = job.config
        return cls(
            dataset_fingerprint(job.dataset),
            config.selector,
            json.dumps(config.selector_params, sort_keys=True),
            config.global_batch_size,
            config.seed,
            config.last_batch,
        )


@dataclass(frozen=True)
class PlanInfo:
    """A plan directory's ``plan.json``."""

    path: Path
    key: PlanKey
    dataset: str
    epochs: int
    steps: int  # per epoch

    @classmethod
    def read(cls, path: Path) -> PlanInfo:
        """Read ``path/plan.json`` and check the selections hold every step it names.

        Raises:
            ConfigError: no plan there (none written, or a crashed run), not one of this
                version, or selections missing, unreadable or of another schema.
        """
        path = Path(path)
        try:
            record = json.loads((path / PLAN_FILE).read_text())
            if record.get("version") != PLAN_VERSION:
                raise ValueError(f"version {record.get('version')!r}, expected {PLAN_VERSION}")
            plan = cls(path, PlanKey(**record["key"]), record["dataset"], int(record["epochs"]),
                       int(record["steps"]))  # fmt: skip
        except FileNotFoundError:
            raise ConfigError(f"{path} is no epoch plan: it has no {PLAN_FILE}") from None
        except (ValueError, KeyError, TypeError) as error:
            raise ConfigError(f"epoch plan {path}: unreadable {PLAN_FILE} ({error})") from None
        plan.check_selections()
        return plan

    def check_selections(self) -> None:
        """Check the Parquet footers: the schema, and one row per planned step.

        Raises:
            ConfigError: naming what is wrong.
        """
        try:
            dataset = pq.ParquetDataset(self.path / SELECTIONS_DIR)
            rows = sum(piece.count_rows() for piece in dataset.fragments)
            schema = dataset.schema
        except (OSError, pa.ArrowException) as error:
            raise ConfigError(f"epoch plan {self.path}: unreadable selections ({error})") from None
        wrong = [f.name for f in SELECTIONS_SCHEMA if _shape(schema, f.name) != _shape(f.type)]
        if wrong:
            raise ConfigError(f"epoch plan {self.path}: selections lack {wrong} (or differ)")
        if rows != self.epochs * self.steps:
            raise ConfigError(
                f"epoch plan {self.path}: {rows} selections for {self.epochs} epoch(s) of "
                f"{self.steps} steps; the plan is incomplete"
            )

    def text(self) -> str:
        """The ``plan.json`` of this plan (the last file written)."""
        record = {"version": PLAN_VERSION, "key": asdict(self.key), "dataset": self.dataset,
                  "epochs": self.epochs, "steps": self.steps}  # fmt: skip
        return json.dumps(record, indent=1) + "\n"


def selection_row(selection: GlobalSelection) -> dict[str, Any]:
    """One Parquet row of ``selection`` (`SELECTIONS_SCHEMA`)."""
    info = {k: _json_value(v) for k, v in selection.info.items()}
    weights = None if selection.weights is None else selection.weights.astype(np.float32).tolist()
    return {"epoch": selection.position.epoch, "step": selection.position.step,
            "positions": selection.positions.tolist(), "weights": weights,
            "info": json.dumps(info, sort_keys=True)}  # fmt: skip


class PlannedSelections:
    """A job's selections from a plan, loaded on first use; online past the plan.

    Stands in for the job's `batchcraft.batcher.lookahead.JobLookahead` (``job.ahead``),
    which it asks for what the plan does not hold.
    """

    def __init__(self, job: Job, plan: PlanInfo, online: SelectionSource | None = None) -> None:
        self.job = job
        self.plan = plan
        self.online = online
        self.served = 0  # selections served from the plan
        self._table: dict[Position, GlobalSelection] | None = None
        self._lock = threading.Lock()

    def take(self, position: Position) -> GlobalSelection | None:
        if position.epoch < self.plan.epochs and not self.job.has_feedback():
            found = self._selections().get(position)
            if found is not None:
                self.served += 1
                return found
        return None if self.online is None else self.online.take(position)

    def keep(self, selection: GlobalSelection) -> None:
        if self.online is not None:
            self.online.keep(selection)

    def after(self, position: Position) -> None:
        if self.online is not None and self.job.normalize(position).epoch >= self.plan.epochs - 1:
            self.online.after(position)  # the plan's last epoch: start what follows it

    def pause(self) -> None:
        if self.online is not None:
            self.online.pause()

    def epoch_plan(self, epoch: int) -> list[np.ndarray] | None:
        if epoch < self.plan.epochs and not self.job.has_feedback():
            table = self._selections()
            return [table[Position(epoch, step)].positions for step in range(self.plan.steps)]
        return None if self.online is None else self.online.epoch_plan(epoch)

    def _selections(self) -> dict[Position, GlobalSelection]:
        with self._lock:
            if self._table is None:
                self._table = read_selections(self.plan.path)
            return self._table


def attach_plan(job: Job, plans: list[PlanInfo]) -> bool:
    """Serve ``job`` from the first of ``plans`` made for it; whether one was."""
    if not plans:
        return False
    key = PlanKey.of(job)
    job.plan_used = False
    for plan in plans:
        if plan.key == key and job.selects_ahead:
            job.ahead = PlannedSelections(job, plan, job.ahead)
            job.plan_used = True
            log_event(LOG, logging.INFO, "plan_used", job=job.job_id, plan=str(plan.path))
            return True
    closest = max(plans, key=lambda plan: _shared_fields(plan.key, key))
    differs = [name for name, value in asdict(key).items() if getattr(closest.key, name) != value]
    log_event(LOG, logging.INFO, "plan_not_used", job=job.job_id, closest=str(closest.path),
              differs=differs or ["the selector is not selected ahead"])  # fmt: skip
    return False


def _shared_fields(first: PlanKey, second: PlanKey) -> int:
    return sum(getattr(first, name) == value for name, value in asdict(second).items())


def read_selections(path: Path) -> dict[Position, GlobalSelection]:
    """Every selection of the plan at ``path``, by position (list columns sliced as numpy
    views, not converted to Python lists: a plan holds millions of positions)."""
    table = pq.read_table(path / SELECTIONS_DIR, schema=SELECTIONS_SCHEMA).combine_chunks()
    positions, weights = (
        _rows_of(table.column(name).chunk(0)) for name in ("positions", "weights")
    )
    found = {}
    epochs, steps = table.column("epoch").to_pylist(), table.column("step").to_pylist()
    for index, info_text in enumerate(table.column("info").to_pylist()):
        position = Position(epochs[index], steps[index])
        info = {k: _from_json(v) for k, v in json.loads(info_text).items()}
        chosen = positions[index]
        assert chosen is not None  # positions are never null (`check_selections`)
        found[position] = GlobalSelection(position, chosen, weights[index], info, made_by="plan")
    return found


def _rows_of(column: pa.ListArray) -> list[np.ndarray | None]:
    """Each row of a list column as a numpy view of its values (None for a null row)."""
    values = column.flatten().to_numpy(zero_copy_only=False)
    offsets = column.offsets.to_numpy() - column.offsets[0].as_py()
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    return [values[offsets[i] : offsets[i + 1]] if valid[i] else None for i in range(len(column))]


def _shape(schema_or_type: Any, name: str | None = None) -> str | None:
    """A column's type without field names and nullability (writers name list items
    differently); None if the schema lacks the column."""
    kind = schema_or_type
    if name is not None:
        if name not in schema_or_type.names:
            return None
        kind = schema_or_type.field(name).type
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return f"list<{kind.value_type}>"
    return str(kind)


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
