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

import json
import logging
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
from batchcraft.batcher.plan_rows import PLAN_FILE, SELECTIONS_DIR, SELECTIONS_SCHEMA, PlanTable
from batchcraft.batcher.selections import GlobalSelection, SelectionSource
from batchcraft.errors import ConfigError
from batchcraft.logs import log_event

LOG = logging.getLogger("batchcraft.batcher")
PLAN_VERSION = 1


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
        self._table: PlanTable | None = None
        self._lock = threading.Lock()

    def take(self, position: Position) -> GlobalSelection | None:
        if position.epoch < self.plan.epochs and not self.job.has_feedback():
            found = self._selections().selection(position)
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
            return self._selections().epoch(epoch, self.plan.steps)
        return None if self.online is None else self.online.epoch_plan(epoch)

    def _selections(self) -> PlanTable:
        with self._lock:
            if self._table is None:
                self._table = PlanTable.of(self.plan.path)  # shared by the plan's jobs
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
