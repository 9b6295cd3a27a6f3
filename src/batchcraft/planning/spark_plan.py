"""Compute an epoch plan on Spark: the pools of every step spread over the executors.

Each Spark task opens the curated dataset itself (a path every executor can read, or a
store URL it copies to a local cache once per machine) and runs the server's own
selection code (`batchcraft.batcher.job.Job`) for a contiguous range of steps, so a
plan holds exactly the selections online serving makes with the same seed. Each task
writes its selections as one Parquet file straight into the plan's directory (nothing
passes through the driver); ``plan.json`` is written last. On a local disk the plan is
built in a staging directory beside ``out`` and renamed into place; on an object store,
where a directory cannot be renamed, it is built in ``out`` itself, whose ``plan.json``
(last) publishes it. Either way a crashed run leaves no plan a server would load, and
a failed one removes what it wrote.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from batchcraft.batcher.config import JobConfig, Position
from batchcraft.batcher.job import Job
from batchcraft.batcher.plan_rows import (
    PLAN_FILE,
    SELECTIONS_DIR,
    SELECTIONS_SCHEMA,
    selection_row,
)
from batchcraft.batcher.plans import PlanInfo, PlanKey
from batchcraft.batcher.remote_plans import local_plan
from batchcraft.batcher.served_dataset import CuratedDataset
from batchcraft.dataset.remote import local_dataset
from batchcraft.errors import ConfigError, OutputError
from batchcraft.storage import StorageOptions, kind, remove_tree, resolve, write_bytes

STEPS_PER_TASK = 64
"""Most steps one Spark task selects (fewer when the plan would make few tasks)."""


@dataclass
class PlanRequest:
    """What to plan (the flags of ``batchcraft plan``)."""

    curated: str | Path | list[str | Path]  # several: a dataset and its deltas, served as one
    out: str | Path  # a path or a store URL
    selector: str
    selector_params: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 256
    world_size: int = 1
    epochs: int = 1
    seed: int = 0
    last_batch: str = "partial"
    master: str = "local[*]"
    storage_options: StorageOptions = field(default_factory=dict)  # travel with the tasks

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
    out = resolve(str(request.out), request.storage_options)
    if kind(out) != pafs.FileType.NotFound:
        raise OutputError(f"{out.url} exists; plans are never overwritten (remove it first)")
    if request.epochs <= 0:
        raise ConfigError(f"epochs={request.epochs} must be > 0")
    roots = [str(root) for root in _as_list(request.curated)]
    name = resolve(roots[0], request.storage_options).name  # not its local copy's
    local = [local_dataset(root, request.storage_options) for root in roots]
    dataset = CuratedDataset.open(local, name)
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
    target = out if not out.is_local else out.sibling(f".{out.name}.staging-{uuid.uuid4().hex[:8]}")
    try:
        task = _Selector(roots, request.job_config(dataset.name), target.url,
                         request.storage_options)  # fmt: skip
        spark.sparkContext.parallelize(tasks, len(tasks)).mapPartitions(task).count()
        plan = PlanInfo(Path(out.path), PlanKey.of(job), dataset.name, request.epochs,
                        job.steps_in(0))  # fmt: skip
        write_bytes(target.join(PLAN_FILE), plan.text().encode())  # last: it publishes
        if out.is_local:
            Path(target.path).rename(out.path)
    except BaseException:
        remove_tree(target)
        raise
    return PlanInfo.read(local_plan(out.url, request.storage_options))


def _as_list(curated: str | Path | list[str | Path]) -> list[str | Path]:
    return list(curated) if isinstance(curated, list | tuple) else [curated]


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
    """The Spark task: open the dataset, build the job, select each step of its ranges and
    write them as one Parquet file of the plan."""

    def __init__(
        self, roots: list[str], config: JobConfig, target: str, options: StorageOptions
    ) -> None:
        self.roots = roots
        self.config = config
        self.target = target
        self.options = options

    def __call__(self, partition: Iterator[tuple[int, int, int]]) -> Iterator[int]:
        ranges = list(partition)
        if not ranges:
            return
        local = [local_dataset(root, self.options) for root in self.roots]
        job = Job("plan", self.config, CuratedDataset.open(local, self.config.dataset))
        rows = [
            selection_row(job.compute_selection(Position(epoch, step)))
            for epoch, first, end in ranges
            for step in range(first, end)
        ]
        epoch, first, _ = ranges[0]
        name = f"part-{epoch:05d}-{first:07d}.parquet"
        sink = pa.BufferOutputStream()
        pq.write_table(pa.Table.from_pylist(rows, schema=SELECTIONS_SCHEMA), sink)
        location = resolve(self.target, self.options).join(SELECTIONS_DIR, name)
        write_bytes(location, sink.getvalue().to_pybytes())
        yield len(rows)
