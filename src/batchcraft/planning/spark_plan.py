"""Compute an epoch plan on Spark: the pools of every step spread over the executors.

Each Spark task opens the curated dataset itself (a path every executor can
read) and runs the server's own selection code (`batchcraft.batcher.job.Job`)
for a contiguous range of steps, so a plan holds exactly the selections online
serving makes with the same seed. The selections are written under a staging
directory beside ``out``; ``plan.json`` is written last and the directory is
renamed into place, so a crashed run leaves no plan a server would load.
"""

from __future__ import annotations

import math
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchcraft.batcher.config import JobConfig, Position
from batchcraft.batcher.job import Job
from batchcraft.batcher.plans import (
    SELECTIONS_DIR,
    SELECTIONS_SCHEMA,
    PlanInfo,
    PlanKey,
    selection_row,
)
from batchcraft.batcher.served_dataset import CuratedDataset
from batchcraft.errors import ConfigError, OutputError

STEPS_PER_TASK = 64
"""Most steps one Spark task selects (fewer when the plan would make few tasks)."""


@dataclass
class PlanRequest:
    """What to plan (the flags of ``batchcraft plan``)."""

    curated: Path | list[Path]  # several: a dataset and its deltas, served as one
    out: Path
    selector: str
    selector_params: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 256
    world_size: int = 1
    epochs: int = 1
    seed: int = 0
    last_batch: str = "partial"
    master: str = "local[*]"

    def job_config(self, dataset: str) -> JobConfig:
        return JobConfig(dataset, self.selector, dict(self.selector_params), self.batch_size,
                         self.world_size, self.seed, self.last_batch)  # type: ignore[arg-type]  # fmt: skip


def build_plan(request: PlanRequest, spark: Any = None) -> PlanInfo:
    """Compute and write the plan ``request`` asks for; returns its ``plan.json``.

    Raises:
        ConfigError: the selector cannot be planned (uniform, or it waits for feedback),
            or the parameters are invalid.
        OutputError: ``request.out`` exists.
    """
    out = Path(request.out)
    if out.exists():
        raise OutputError(f"{out} exists; plans are never overwritten (remove it first)")
    if request.epochs <= 0:
        raise ConfigError(f"epochs={request.epochs} must be > 0")
    dataset = CuratedDataset.open(request.curated)
    job = Job("plan", request.job_config(dataset.name), dataset)
    _check_plannable(job)
    if spark is None:
        from batchcraft.pipeline.spark import spark_session

        spark = spark_session(request.master)
    parallelism = int(spark.sparkContext.defaultParallelism)
    if job.selector.epoch_level:  # a task plans its epoch once, then selects its steps
        tasks = [(epoch, 0, job.steps_in(0)) for epoch in range(request.epochs)]
    else:
        tasks = _tasks(job.steps_in(0), request.epochs, parallelism)
    staging = out.parent / f".{out.name}.staging-{uuid.uuid4().hex[:8]}"
    try:
        rows = spark.sparkContext.parallelize(tasks, len(tasks)).mapPartitions(
            _Selector([str(root) for root in dataset.roots], request.job_config(dataset.name))
        )
        frame = spark.createDataFrame(rows, schema=_spark_schema())
        frame.write.parquet(str(staging / SELECTIONS_DIR))
        plan = PlanInfo(staging, PlanKey.of(job), dataset.name, request.epochs, job.steps_in(0))
        plan.write()
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return PlanInfo.read(out)


def _check_plannable(job: Job) -> None:
    if not job.selects_ahead:
        raise ConfigError(
            f"selector {job.config.selector!r} cannot be planned: it is uniform (served at "
            "full speed without a plan) or waits for synchronous scores"
        )
    if job.feedback_for(Position(0, 0)) is None:
        raise ConfigError(
            f"selector {job.config.selector!r} cannot be planned: it selects from the "
            "trainer's feedback, which a plan made before training does not have"
        )


def _tasks(steps: int, epochs: int, parallelism: int) -> list[tuple[int, int, int]]:
    """(epoch, first step, end step) ranges: at least two per core, at most
    `STEPS_PER_TASK` steps each."""
    per_task = max(1, min(STEPS_PER_TASK, math.ceil(steps * epochs / (2 * parallelism))))
    return [
        (epoch, first, min(steps, first + per_task))
        for epoch in range(epochs)
        for first in range(0, steps, per_task)
    ]


class _Selector:
    """The Spark task: open the dataset, build the job, select each step of its ranges."""

    def __init__(self, roots: list[str], config: JobConfig) -> None:
        self.roots = roots
        self.config = config

    def __call__(self, ranges: Iterator[tuple[int, int, int]]) -> Iterator[tuple[Any, ...]]:
        job = Job("plan", self.config, CuratedDataset.open(self.roots, self.config.dataset))
        for epoch, first, end in ranges:
            for step in range(first, end):
                row = selection_row(job.compute_selection(Position(epoch, step)))
                yield tuple(row[name] for name in SELECTIONS_SCHEMA.names)


def _spark_schema() -> Any:
    from pyspark.sql import types as T

    return T.StructType(
        [
            T.StructField("epoch", T.IntegerType(), False),
            T.StructField("step", T.IntegerType(), False),
            T.StructField("positions", T.ArrayType(T.LongType(), False), False),
            T.StructField("weights", T.ArrayType(T.FloatType(), False), True),
            T.StructField("info", T.StringType(), False),
        ]
    )
