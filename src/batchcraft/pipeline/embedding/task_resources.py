"""How the embed stage spreads over the cores and GPUs Spark gives it (pure functions).

Spark runs one Python worker per task running at once on an executor: ``executor cores /
spark.task.cpus`` of them. Each worker loads the model once and runs torch on the task's
own cores (``spark.task.cpus`` threads), so the workers never fight over cores; with
``spark.task.resource.gpu.amount`` set, each task runs on the GPU Spark assigned to it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from batchcraft.pipeline.embedding.sentence_encoder import EncoderSpec

ROWS_PER_EMBED_PARTITION = 2000
"""At most this many rows per embed task: a few Arrow batches, so the tail stays short."""


def task_slots(total_cores: int, task_cpus: int) -> int:
    """Tasks Spark runs at once (one Python worker each): all cores over each task's cores."""
    if total_cores < 1 or task_cpus < 1:
        raise ValueError(f"{total_cores=} and {task_cpus=} must be >= 1")
    return max(1, total_cores // task_cpus)


def embed_partitions(num_rows: int, slots: int) -> int:
    """Partitions of the embed stage: a whole number of waves of ``slots`` tasks, each of at
    most `ROWS_PER_EMBED_PARTITION` rows, so every worker has work until the last wave."""
    waves = max(1, math.ceil(num_rows / (ROWS_PER_EMBED_PARTITION * slots)))
    return waves * slots


def spec_for_task(spec: EncoderSpec, task_cpus: int, gpu_addresses: Sequence[str]) -> EncoderSpec:
    """The encoder of one task: torch threads = the task's cores (unless the spec fixes them),
    and the first GPU Spark assigned to the task, if any (else the spec's device)."""
    device = f"cuda:{gpu_addresses[0]}" if gpu_addresses else spec.device
    return replace(spec, num_threads=spec.num_threads or max(1, task_cpus), device=device)
