"""Finished stages kept for a rerun: the work directory of ``curate --work-dir``.

The embed stage is the one most worth keeping (minutes to hours of encoder time; every
other stage costs seconds to minutes on the same rows; `kept_stages` keeps the k-means fit
too, which is small), so its output is stored as Parquet under
a key made of the input fingerprints and every parameter that reaches it. A rerun after a
crash or a kill, or with only downstream parameters changed (``eps``, clusters, concepts,
shards, …), reads it back instead of encoding again. A stage is written to a directory of
its own and renamed into place when whole (rename is atomic on a local filesystem), so a
killed write is never read. A work directory on an object store (``s3://…``) keeps its
stages as `resume_store.PrefixStageStore` does: files first, a record naming them last.

A work directory (local or on a store) keeps the `KEPT_PER_STAGE` outputs of each stage
used last (a reuse counts as a use); older keys are removed when a new output is kept, so
the directory does not grow with every changed input. ``work_dir = "none"`` keeps nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from batchcraft.pipeline.config import CurateConfig
from batchcraft.pipeline.read.discovery import InputFile
from batchcraft.pipeline.resume_store import PrefixStageStore
from batchcraft.storage import Location, is_url, resolve

DOWNSTREAM_OF_EMBED = frozenset(
    {
        "out",
        "master",
        "spark_conf",
        "overwrite",
        "write_report",
        "work_dir",
        "storage_options",  # how to reach the inputs, not what they hold (fingerprinted)
        "num_clusters",
        "kmeans_iterations",
        "kmeans_sample_size",
        "eps",
        "near_eps",
        "second_cluster",
        "concepts_file",
        "concept_threshold",
        "max_concepts",
        "num_shards",
        "embedding_dtype",
        "reference_scores",
        "reference_logit_scale",
        "reference_logit_bias",
        "reference_negatives",
        "recluster",
    }
)
"""Parameters read only after the embed stage; any other one (and any added later) is
part of the embed stage's key, so an unlisted parameter can only cost a re-embed."""
KEPT_PER_STAGE = 2
"""Outputs of one stage a work directory keeps (the latest used)."""
NO_WORK_DIR = "none"
"""The ``work_dir`` value that keeps nothing (``./none`` names a directory)."""
_PARTIAL = ".partial-"


def work_dir_of(config: CurateConfig) -> Path | Location | None:
    """The run's work directory: ``config.work_dir`` (a local path, or a store's prefix
    reached with ``config.storage_options``), else ``.NAME.work`` beside a local ``out``;
    None (nothing kept) for ``work_dir = "none"`` and for an ``out`` on a store with no
    ``work_dir``.

    Raises:
        StorageError: ``work_dir`` names a store that is not installed.
    """
    if config.work_dir == NO_WORK_DIR:
        return None
    if config.work_dir is None:
        if is_url(config.out) and not config.out.startswith("file://"):
            return None
        out = Path(config.out.removeprefix("file://").rstrip("/"))
        return out.parent / f".{out.name}.work"
    if is_url(config.work_dir) and not config.work_dir.startswith("file://"):
        return resolve(config.work_dir, config.storage_options)
    return Path(config.work_dir.removeprefix("file://"))


def embed_key(
    config: CurateConfig,
    files: list[InputFile],
    model_path: str | None,
    predecessors: Sequence[str] = (),
) -> str:
    """The key of the embed stage's output: what the inputs hold and every parameter of the
    stages up to and including embed (read, exact and MinHash dedup, the encoder), and the
    manifest fingerprints of the ``--against`` datasets (rows removed against them before
    embed change what is embedded)."""
    params = {
        field.name: getattr(config, field.name)
        for field in dataclasses.fields(config)
        if field.name not in DOWNSTREAM_OF_EMBED
    }
    params["inputs"] = [(file.path, file.source, file.sha256) for file in files]
    params["model_path"] = model_path
    if predecessors:
        params["predecessors"] = list(predecessors)
    text = json.dumps(params, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class StageStore:
    """Finished stage outputs under one work directory, one directory per stage and key."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, stage: str, key: str) -> Path:
        return self.root / f"{stage}-{key}"

    def load(self, spark: SparkSession, stage: str, key: str) -> DataFrame | None:
        """The kept output of ``stage`` under ``key``, or None when there is none (a reuse
        marks it as used now, for `prune`)."""
        if self.root.is_dir():
            self.remove_partials()  # a killed run's, also when this run keeps nothing new
        path = self._path(stage, key)
        if not path.is_dir():
            return None
        os.utime(path)
        return spark.read.parquet(str(path))

    def save(self, frame: DataFrame, stage: str, key: str) -> None:
        """Keep ``frame`` as the output of ``stage`` under ``key``: written beside its place,
        then renamed into it, so the place holds a whole output or nothing."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.remove_partials()
        partial = self.root / f"{stage}-{key}{_PARTIAL}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        frame.write.parquet(str(partial))
        target = self._path(stage, key)
        if target.exists():  # another run kept the same output meanwhile: identical
            shutil.rmtree(partial, ignore_errors=True)
            return
        partial.rename(target)
        self.prune(stage)

    def prune(self, stage: str) -> None:
        """Remove all but the `KEPT_PER_STAGE` outputs of ``stage`` used last."""
        outputs = [
            path
            for path in self.root.glob(f"{stage}-*")
            if path.is_dir() and _PARTIAL not in path.name
        ]
        outputs.sort(key=lambda path: path.stat().st_mtime_ns, reverse=True)
        for path in outputs[KEPT_PER_STAGE:]:
            shutil.rmtree(path, ignore_errors=True)

    def remove_partials(self) -> None:
        """Remove the half-written stage outputs of killed runs (a live run's are kept)."""
        for path in self.root.glob(f"*{_PARTIAL}*"):
            pid = path.name.rsplit(_PARTIAL, 1)[1].split("-")[0]
            if pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def stage_store(config: CurateConfig) -> StageStore | PrefixStageStore | None:
    """The run's stage store, or None when the run keeps nothing."""
    root = work_dir_of(config)
    if isinstance(root, Location):
        return PrefixStageStore(root, KEPT_PER_STAGE)
    return None if root is None else StageStore(root)
