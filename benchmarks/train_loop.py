"""What every task of `train_through_service.py` shares: variants, job ids, batch
tensors, curves, the timed training loop and the curated-dataset writer.

A task trains a real torch model on batches pulled from a running
``batchcraft serve`` and records a `Curve`: the held-out metric at every
evaluation, with the step and the training time (selection and transport
included, evaluation excluded) at which it was measured.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from batchcraft.dataset import layout
from batchcraft.dataset.arrays import to_fixed_size_list
from batchcraft.dataset.manifest import write_manifest
from batchcraft.dataset.schema import SCHEMA_VERSION


@dataclass(frozen=True)
class Variant:
    """One way to choose a task's batches: a selector, its parameters and its scoring mode."""

    label: str
    selector: str
    params: dict[str, Any] = field(default_factory=dict)
    scoring: str = "async"


UNIFORM = Variant("uniform", "uniform")


def job_id(task: str, variant: Variant, seed: int) -> str:
    """A fresh job per run: a reused id would resume the previous run's cursor."""
    return f"{task}-{variant.label}-{seed}-{time.monotonic_ns()}".replace(" ", "_")


def tensor(array: Any) -> torch.Tensor:
    """A batch column as a tensor (the received arrays are read-only views: copied)."""
    return torch.tensor(np.asarray(array))


@dataclass
class Curve:
    """A training run: the metric at each evaluation, and what the run cost.

    Attributes:
        steps: the step of each evaluation.
        seconds: training seconds until that evaluation (evaluations excluded).
        values: the held-out metric there.
        batches: batches trained on.
        train_seconds: training seconds of the whole run (evaluations excluded).
        served_by: how many batches each selector made (a feedback selector's
            warm-up batches say ``uniform``).
        feedback_scored: ``info["feedback_scored"]`` of every batch that has it.
        diagnostics: per-batch values a task records about what it was served.
    """

    steps: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    batches: int = 0
    train_seconds: float = 0.0
    served_by: dict[str, int] = field(default_factory=dict)
    feedback_scored: list[float] = field(default_factory=list)
    diagnostics: dict[str, list[float]] = field(default_factory=dict)

    def note(self, name: str, value: float) -> None:
        """Record one value of a task's diagnostic (e.g. the flipped-label share of a batch)."""
        self.diagnostics.setdefault(name, []).append(value)

    def first_reaching(self, target: float) -> int | None:
        """Index of the first evaluation at or above ``target``, None if none is."""
        hits = [index for index, value in enumerate(self.values) if value >= target]
        return hits[0] if hits else None

    def final(self) -> float:
        """The metric at the end of training: the mean of the last three evaluations."""
        return float(np.mean(self.values[-3:]))


def timed_training(
    batches: Iterable[dict[str, Any]],
    steps: int,
    train_step: Callable[[dict[str, Any], Curve], None],
    evaluate: Callable[[], float],
    eval_every: int,
    meta: Callable[[], Any] | None = None,
) -> Curve:
    """Train on ``steps`` batches, evaluating every ``eval_every``; the clock stops during
    evaluations (it runs while a batch is awaited: selection and transport count).

    Args:
        batches: the stream (a `BatchClient`, or a DataLoader over a `BatchDataset`).
        steps: batches to train on.
        train_step: trains on one batch (and reports feedback, if the task does); it may
            `Curve.note` diagnostics.
        evaluate: the held-out metric of the current model.
        eval_every: steps between evaluations.
        meta: the latest batch's `BatchMeta` (``client.last_meta``), to count who made it.
    """
    curve = Curve()
    paused = 0.0
    started = time.perf_counter()
    for step, batch in enumerate(batches, start=1):
        train_step(batch, curve)
        if meta is not None:
            _count_selector(curve, meta())
        if step % eval_every == 0 or step == steps:
            now = time.perf_counter()
            curve.steps.append(step)
            curve.seconds.append(now - started - paused)
            curve.values.append(evaluate())
            paused += time.perf_counter() - now
        if step >= steps:
            break
    curve.batches = step
    curve.train_seconds = time.perf_counter() - started - paused
    return curve


def _count_selector(curve: Curve, meta: Any) -> None:
    if meta is None:
        return
    curve.served_by[meta.selector] = curve.served_by.get(meta.selector, 0) + 1
    scored = meta.info.get("feedback_scored")
    if scored is not None:
        curve.feedback_scored.append(float(scored))


def unit(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit norm (float32)."""
    return (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)


def write_curated(root: Path, columns: dict[str, Any], description: str) -> Path:
    """Write ``columns`` as a one-shard curated dataset at ``root`` (every row kept).

    2-D numpy arrays become ``fixed_size_list<float32>`` columns; ``keep`` and
    ``source`` are added when absent.
    """
    num_rows = len(next(iter(columns.values())))
    arrays: dict[str, Any] = {
        name: to_fixed_size_list(value) if getattr(value, "ndim", 1) == 2 else value
        for name, value in columns.items()
    }
    arrays.setdefault("source", pa.array(["synthetic"] * num_rows))
    arrays.setdefault("keep", pa.array(np.ones(num_rows, bool)))
    layout.data_dir(root).mkdir(parents=True, exist_ok=True)
    shard = layout.shard_name(0)
    pq.write_table(pa.table(arrays), root / shard)
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "num_rows": num_rows,
        "num_kept": num_rows,
        "shards": [{"path": shard, "num_rows": num_rows, "num_kept": num_rows}],
        "description": description,
    }
    write_manifest(root, manifest)
    return root
