"""The curation job: checks the inputs before Spark starts, runs the steps in order in a
Spark session, and writes the dataset and its manifest atomically.

Each step is the ``*_step`` function of its folder's ``stage`` module (what it caches and
counts); this module only orders them and releases each frame once no later step reads
it. The job writes the dataset only and imports no report: the caller asks for the
report (``batchcraft.curation.curate`` and the ``batchcraft curate`` command do).
"""

from __future__ import annotations

import logging
import os
import re
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from batchcraft.dataset import layout
from batchcraft.dataset.manifest import manifest_text
from batchcraft.errors import ConfigError, InputError
from batchcraft.pipeline.concepts.stage import concepts_step
from batchcraft.pipeline.concepts.zero_shot import read_vocabulary
from batchcraft.pipeline.config import CurateConfig
from batchcraft.pipeline.dedup.stage import Unique, exact_dedup_step, semantic_dedup_step
from batchcraft.pipeline.embedding.sentence_encoder import resolve_model_path
from batchcraft.pipeline.frames import PersistedFrames
from batchcraft.pipeline.incremental.predecessors import Predecessor, open_predecessors
from batchcraft.pipeline.incremental.stage import (
    PRIOR,
    Against,
    incremental_record,
    read_previous,
)
from batchcraft.pipeline.kept_stages import EmbedInputs, KeptStages
from batchcraft.pipeline.minhash.kept_keys import MANIFEST_KEY
from batchcraft.pipeline.minhash.settings import MinhashSettings
from batchcraft.pipeline.minhash.stage import NearUnique, minhash_dedup_step
from batchcraft.pipeline.progress import StageClock
from batchcraft.pipeline.read.column_plan import (
    ColumnPlan,
    Observation,
    check_column_names,
    needs_survey,
    observe_inputs,
    plan_columns,
    required_columns,
)
from batchcraft.pipeline.read.discovery import InputFile, discover
from batchcraft.pipeline.read.inputs import check_columns
from batchcraft.pipeline.read.stage import plan_with_survey, read_step
from batchcraft.pipeline.run_record import build_manifest
from batchcraft.pipeline.scores.stage import reference_scores_step
from batchcraft.pipeline.spark import spark_session
from batchcraft.pipeline.write.publish import staged_output
from batchcraft.pipeline.write.stage import write_step
from batchcraft.storage import Location, write_bytes

LOG = logging.getLogger("batchcraft.pipeline")
_CORRUPT_INPUT = re.compile(r"CorruptInput: (input .+? cannot be decompressed: [^\n]+)")
"""A damaged compressed file found by the executor reading it (past the driver's check)."""
STAGES = (
    "read+validate",
    "exact_dedup",
    "minhash_dedup",  # only with near_dedup = "minhash"
    "embed",
    "cluster",
    "semantic_dedup",
    "concepts",
    "reference_scores",  # only with reference_scores = "pairs"
    "write",
)


def curate(
    inputs: str | Sequence[str] | CurateConfig,
    out: str | None = None,
    *,
    spark: SparkSession | None = None,
    **params: Any,
) -> dict[str, Any]:
    """Run the whole curation job and return the manifest it wrote.

    Everything a user can get wrong about the inputs is checked before Spark starts. The
    dataset is built in a staging directory and renamed into place only on success. No
    report is written: ``batchcraft.curation.curate`` runs this job, then writes the
    report (``write_report`` is read there, not here).

    Args:
        inputs: Input paths/globs, or a complete CurateConfig.
        out: Output directory (when ``inputs`` is not a CurateConfig).
        spark: An existing session to run in (left running); by default one is created for
            ``config.master`` and stopped at the end.
        **params: Any other CurateConfig field, e.g. ``eps=0.05``, ``pair_column="answer"``.

    Example:
        >>> curate("corpus/*.jsonl", "curated/", id_column="id", eps=0.1)  # doctest: +SKIP
    """
    config = CurateConfig.from_call(inputs, out, params)
    checked = _check_before_spark(config)
    with staged_output(config.out, config.overwrite, config.storage_options) as output:
        return _run_in_session(spark, checked, output.location)


@dataclass(frozen=True)
class _Checked:
    """What the job knows before Spark starts: a wrong path, column, vocabulary or model
    directory has stopped it already, in a second rather than after a Spark start-up."""

    config: CurateConfig
    files: list[InputFile]
    vocabulary: list[str] | None
    model_path: str | None  # None for precomputed embeddings
    observed: list[Observation]  # every input's columns
    columns: ColumnPlan | None  # None until the JSONL inputs' records tell their types
    predecessors: list[Predecessor]  # the --against datasets, checked


def _check_before_spark(config: CurateConfig) -> _Checked:
    files = discover(config.inputs, config.source, config.storage_options)
    check_columns(files, required_columns(config))
    observed = observe_inputs(files)
    check_column_names(observed, config)
    columns = None if needs_survey(observed) else plan_columns(observed, config)
    vocabulary = read_vocabulary(config.concepts_file) if config.concepts_file else None
    model_path = None if config.embedding_column else resolve_model_path(config.model)
    if config.recluster and not config.against:
        raise ConfigError("recluster refits k-means on the union with --against datasets: give one")
    predecessors = open_predecessors(config, model_path)
    return _Checked(config, files, vocabulary, model_path, observed, columns, predecessors)


def _run_in_session(
    spark: SparkSession | None, checked: _Checked, staging: Location
) -> dict[str, Any]:
    """Run the stages in ``spark`` (else in a session of its own, stopped at the end),
    releasing every frame the job cached whether it succeeds or fails."""
    config = checked.config
    skipped = (config.reference_scores != "pairs") + (config.near_dedup != "minhash")
    clock = StageClock(len(STAGES) - skipped)
    session = spark or spark_session(config.master, config.spark_conf, clock.interactive)
    frames = PersistedFrames(session)
    try:
        return _run(session, checked, staging, clock, frames)
    except Exception as error:  # Spark wraps an executor's error in pages of traceback
        damaged = _CORRUPT_INPUT.search(str(error))
        if damaged is None:
            raise
        raise InputError(damaged.group(1)) from error
    finally:
        try:
            frames.close()  # a failure here must not hide the job's own error
        except Exception:  # e.g. the JVM is gone: log it and still stop the session
            LOG.warning("could not release the job's cached frames", exc_info=True)
        if spark is None:
            session.stop()


def _deduplicate(
    config: CurateConfig,
    raw: DataFrame,
    clock: StageClock,
    frames: PersistedFrames,
    against: Against | None,
) -> tuple[Unique, NearUnique]:
    """Exact dedup, then MinHash near dedup (when asked for), both against the
    predecessors' kept rows too: what is left goes on to be embedded, so no duplicate they
    remove is ever embedded."""
    with clock.stage("exact_dedup") as counts:
        keys = None if against is None else against.exact_keys()
        unique = exact_dedup_step(raw, frames, counts, keys)
    if config.near_dedup != "minhash":
        return unique, NearUnique(unique.representatives, unique.num_rows)
    with clock.stage("minhash_dedup") as counts:
        settings = MinhashSettings.from_config(config)
        options = config.storage_options
        previous = None if against is None else against.minhash_previous(settings, options)
        return unique, minhash_dedup_step(config, unique, frames, counts, previous)


def _run(
    spark: SparkSession,
    checked: _Checked,
    staging: Location,
    clock: StageClock,
    frames: PersistedFrames,
) -> dict[str, Any]:
    """Every step in turn, each frame released once no later step reads it; the manifest."""
    config, files, vocabulary = checked.config, checked.files, checked.vocabulary
    with clock.stage("read+validate") as counts:
        columns = checked.columns or plan_with_survey(spark, config, files, checked.observed)
        raw, parsed = read_step(spark, config, files, columns, frames, counts)
        against = None
        if checked.predecessors:
            previous_rows = frames.keep(read_previous(spark, checked.predecessors, config))
            against = Against(checked.predecessors, previous_rows)
            raw = against.reject_known_ids(raw, frames)
    unique, near = _deduplicate(config, raw, clock, frames, against)
    embed_inputs = EmbedInputs(files, checked.model_path, checked.predecessors)
    kept = KeptStages.of(spark, config, embed_inputs)
    with clock.stage("embed") as counts:
        embedded, spec = kept.embed(near.representatives, near.num_rows, frames, counts)
        frames.release(parsed, raw, unique.marked)
        dimension = len(embedded.select("embedding").first()[0])  # type: ignore[index]
    with clock.stage("cluster") as counts:
        previous = None  # the predecessors' kept rows, for their duplicates to inherit from
        if against is None:
            kmeans, clustered = kept.cluster(embedded, near.num_rows, frames, counts)
        else:
            kmeans, clustered, previous = against.clustered(
                config, embedded, near.num_rows, frames, counts
            )
        frames.release(embedded)
    _test_kill_point("semantic_dedup")
    with clock.stage("semantic_dedup") as counts:
        deduped = semantic_dedup_step(config, clustered, frames, counts)
        if against is not None:  # the predecessors' rows: compared with, never written
            deduped = deduped.where(~F.col(PRIOR)).drop(PRIOR)
        frames.release(clustered)
    with clock.stage("concepts") as counts:
        annotated = concepts_step(config, deduped, vocabulary, spec, frames, counts)
    if config.reference_scores == "pairs":
        with clock.stage("reference_scores") as counts:
            annotated = reference_scores_step(config, annotated, near.num_rows, frames, counts)
    with clock.stage("write") as counts:
        shards, accounting, kept_keys = write_step(
            config,
            files,
            unique,
            near,
            annotated,
            kmeans.centroids,
            dimension,
            staging,
            columns,
            previous,
        )
        counts["rows"] = sum(shard["num_rows"] for shard in shards)
    manifest = build_manifest(
        config,
        files,
        near.found.counts() if near.found else None,
        accounting,
        shards,
        dimension,
        kmeans,
        spec,
        vocabulary,
        clock.timings,
        columns,
    )
    manifest["stages_reused"] = kept.reused
    if kept_keys is not None:
        manifest[MANIFEST_KEY] = kept_keys
    if against is not None:
        manifest["incremental"] = incremental_record(against, config, manifest["counts"])
    write_bytes(staging.join(layout.MANIFEST), manifest_text(manifest).encode())  # last
    return manifest


def _test_kill_point(stage: str) -> None:
    """SIGKILL this process when ``BATCHCRAFT_TEST_KILL_AT`` names ``stage``: how the tests
    kill a run at a chosen stage, deterministically (nothing sets it otherwise)."""
    if os.environ.get("BATCHCRAFT_TEST_KILL_AT") == stage:
        os.kill(os.getpid(), signal.SIGKILL)
