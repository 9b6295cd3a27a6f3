"""The dedup stages: exact duplicates (same normalised text and pair), then semantic
duplicates (SemDeDup within clusters, with a chain-safe keep rule).

Duplicate pairs are found per cluster on the executors; the keep rule runs on the driver
over the edge list when it is small enough, and distributed in rounds otherwise.
`exact_dedup_step` and `semantic_dedup_step` are these stages in the curation job: what
they cache and count, and what the later steps need of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from batchcraft.dataset.schema import similarity_threshold
from batchcraft.errors import InputError
from batchcraft.pipeline.config import DEFAULT_NEAR_EPS, CurateConfig
from batchcraft.pipeline.config_checks import KeepPolicy, check_keep_policy
from batchcraft.pipeline.dedup.semantic import PRIOR, decide_edges, group_edges
from batchcraft.pipeline.frames import PersistedFrames
from batchcraft.pipeline.read.column_types import KEPT_COLUMNS

PRIOR_PRIORITY = -3.0
"""Priority of an earlier dataset's row: before any other (the others' lie in [-1, 1])."""
_PARSE_ONLY_COLUMNS = ("file_index", "record", "reason", "detail", "raw", "dedup_key")
# Kept to the end of the job: every parsed record's outcome (accounting, rejects files) ...
_OUTCOME_COLUMNS = ("file_index", "record", "source", "id", "reason", "detail", "raw")
# ... and the exact duplicates, which take their representative's vectors when written
# (and keep their own reference loss and kept input columns, if any).
_DUPLICATE_COLUMNS = ("id", "text", "pair_text", "source", "dup_of", "dup_kind", "ref_loss")


def exact_dedup(df: DataFrame, previous_keys: DataFrame | None = None) -> DataFrame:
    """Mark exact duplicates (same normalised text and pair): the smallest id of each group is kept.

    Adds ``dup_of`` (the kept id) and ``dup_kind = 'exact'`` on the others, null on the kept row.
    With ``previous_keys`` (``dedup_key``, ``prev_id`` of an earlier dataset's kept rows),
    every row whose key is there is a duplicate of that earlier row instead.
    """
    by_key = Window.partitionBy("dedup_key")
    representative = F.min("id").over(by_key)
    if previous_keys is not None:
        df = df.join(previous_keys, "dedup_key", "left")
        representative = F.coalesce(F.col("prev_id"), representative)
    is_duplicate = F.col("id") != representative
    marked = df.withColumn("dup_of", F.when(is_duplicate, representative)).withColumn(
        "dup_kind", F.when(is_duplicate, F.lit("exact"))
    )
    return marked.drop("prev_id")


def semantic_dedup(
    df: DataFrame,
    eps: float,
    near_eps: float = DEFAULT_NEAR_EPS,
    keep_policy: KeepPolicy = "prototypical",
    second_cluster: bool = True,
    max_driver_edges: int = 1_000_000,
    persist: Callable[[DataFrame], DataFrame] = DataFrame.persist,
) -> DataFrame:
    """SemDeDup within clusters (and second-nearest clusters), chain-safe keep rule.

    Input columns: ``id``, ``embedding``, ``cluster``, ``centroid_sim`` (and ``second_cluster``).
    Adds ``max_sim``, ``dup_of``, ``dup_kind`` (``near``/``semantic``) and ``keep``.
    Up to ``max_driver_edges`` duplicate pairs, the keep rule runs on the driver (a bounded
    amount of memory); beyond that it runs distributed, in rounds over the edge list.
    ``persist`` caches the two intermediate edge lists; pass a function that also tracks
    them to release them once the result is materialised.

    Raises:
        ConfigError: ``keep_policy`` is not one of prototypical, hardest, smallest_id.
    """
    check_keep_policy(keep_policy)
    threshold, near_threshold = similarity_threshold(eps), similarity_threshold(near_eps)
    priority = _priority(keep_policy)
    if PRIOR in df.columns:  # an earlier dataset's rows: always kept, so first in any order
        priority = F.when(F.col(PRIOR), F.lit(PRIOR_PRIORITY)).otherwise(priority)
    ranked = df.withColumn("priority", priority)
    edges, max_sims = _candidate_edges(ranked, threshold, second_cluster, persist)
    edges = persist(edges)
    if edges.count() <= max_driver_edges:
        decisions = _keep_rule_on_driver(edges)
    else:
        decisions = _keep_rule(edges)
    result = (
        ranked.join(max_sims, "id", "left")
        .join(decisions, "id", "left")
        .withColumn("max_sim", F.coalesce("max_sim", F.lit(-1.0)).cast("float"))
        .withColumn("keep", F.col("sem_dup_of").isNull())
        .withColumn(
            "dup_kind",
            F.when(F.col("sem_dup_of").isNull(), F.lit(None).cast("string"))
            .when(F.col("sem_dup_sim") >= near_threshold, F.lit("near"))
            .otherwise(F.lit("semantic")),
        )
        .withColumn("dup_of", F.col("sem_dup_of"))
    )
    return result.drop("priority", "sem_dup_of", "sem_dup_sim")


def _priority(keep_policy: KeepPolicy) -> F.Column:
    """Smaller sorts first and survives first; ties are broken by the smaller id."""
    if keep_policy == "prototypical":
        return -F.col("centroid_sim").cast("double")
    if keep_policy == "hardest":
        return F.col("centroid_sim").cast("double")
    assert keep_policy == "smallest_id", keep_policy  # checked by `semantic_dedup`
    return F.lit(0.0)


def _candidate_edges(
    ranked: DataFrame,
    threshold: float,
    second_cluster: bool,
    persist: Callable[[DataFrame], DataFrame],
) -> tuple[DataFrame, DataFrame]:
    columns = ["id", "priority", "embedding", *([PRIOR] if PRIOR in ranked.columns else [])]
    members = ranked.select(F.col("cluster").alias("group"), *columns)
    if second_cluster:
        guests = ranked.where(F.col("second_cluster") >= 0).select(
            F.col("second_cluster").alias("group"), *columns
        )
        members = members.unionByName(guests)

    def edges_of(table: pa.Table) -> pa.Table:
        return group_edges(table, threshold)

    found = members.groupBy("group").applyInArrow(edges_of, "u string, v string, sim float")
    found = persist(found)
    edges = found.where(F.col("v").isNotNull()).groupBy("u", "v").agg(F.max("sim").alias("sim"))
    max_sims = (
        found.where(F.col("v").isNull())
        .groupBy(F.col("u").alias("id"))
        .agg(F.max("sim").alias("max_sim"))
    )
    return edges, max_sims


def _keep_rule_on_driver(edges: DataFrame) -> DataFrame:
    """The keep rule on the driver, with ids kept in Arrow (no Python string per edge)."""
    table = edges.orderBy("v", "u").toArrow()
    count = table.num_rows
    chunks = [*table.column("u").chunks, *table.column("v").chunks]
    ends = pa.concat_arrays(chunks) if chunks else pa.array([], pa.string())
    nodes = pc.dictionary_encode(ends.cast(pa.string()))  # Spark may send large_string
    index = nodes.indices.to_numpy().astype(np.int64)
    sims = table.column("sim").to_numpy()
    del table, ends
    result = decide_edges(index[:count], index[count:], sims)
    removed = np.flatnonzero(~result.keep)
    decisions = pa.table(
        {
            "id": nodes.dictionary.take(pa.array(removed)),
            "sem_dup_of": nodes.dictionary.take(pa.array(result.dup_of[removed])),
            "sem_dup_sim": pa.array(result.dup_sim[removed], pa.float32()),
        }
    )
    return edges.sparkSession.createDataFrame(
        decisions, "id string, sem_dup_of string, sem_dup_sim float"
    )


def _keep_rule(edges: DataFrame) -> DataFrame:
    """Greedy maximal independent set in priority order, computed in rounds over the edge list.

    An undecided row is removed once any higher-priority neighbour is kept (pointing at the
    most similar kept one) and kept once all its higher-priority neighbours are removed.
    Each round decides at least the top undecided row of every component.
    """
    targets = edges.select(F.col("v").alias("id")).distinct()
    roots = edges.select(F.col("u").alias("id")).distinct().join(targets, "id", "left_anti")
    decided = roots.select(
        "id",
        F.lit(True).alias("kept"),
        F.lit(None).cast("string").alias("sem_dup_of"),
        F.lit(None).cast("float").alias("sem_dup_sim"),
    )
    undecided = targets
    while True:
        status = decided.select(F.col("id").alias("u"), F.col("kept").alias("u_kept"))
        votes = (
            edges.join(undecided.select(F.col("id").alias("v")), "v")
            .join(status, "u", "left")
            .groupBy("v")
            .agg(
                F.max(F.coalesce(F.col("u_kept").cast("int"), F.lit(0))).alias("any_kept"),
                F.min(F.col("u_kept").isNotNull().cast("int")).alias("all_decided"),
                F.max(F.when(F.col("u_kept"), F.struct("sim", "u"))).alias("best"),
            )
        )
        newly = votes.where((F.col("any_kept") == 1) | (F.col("all_decided") == 1)).select(
            F.col("v").alias("id"),
            (F.col("any_kept") == 0).alias("kept"),
            F.col("best.u").alias("sem_dup_of"),
            F.col("best.sim").alias("sem_dup_sim"),
        )
        newly = newly.localCheckpoint()
        if newly.isEmpty():
            break
        decided = decided.unionByName(newly).localCheckpoint()
        undecided = undecided.join(newly.select("id"), "id", "left_anti")
    if not undecided.isEmpty():  # pragma: no cover - impossible for a DAG of priorities
        raise RuntimeError("semantic dedup keep rule did not converge")
    return decided.where(~F.col("kept")).select("id", "sem_dup_of", "sem_dup_sim")


@dataclass(frozen=True)
class Unique:
    """What the exact-dedup step leaves to the later steps.

    Attributes:
        representatives: The valid rows that are no exact duplicate (to embed).
        num_rows: How many there are.
        outcomes: One row per parsed record: its source, id and reject reason (small, cached).
        duplicates: The exact duplicates, written with their representative's vectors.
        marked: The valid rows with ``dup_of`` (cached; release once embedded).
    """

    representatives: DataFrame
    num_rows: int
    outcomes: DataFrame
    duplicates: DataFrame
    marked: DataFrame


def exact_dedup_step(
    raw: DataFrame,
    frames: PersistedFrames,
    counts: dict[str, int],
    previous_keys: DataFrame | None = None,
) -> Unique:
    """Mark the exact duplicates among the valid records (and of ``previous_keys``, see
    `exact_dedup`); what later steps need of them."""
    marked = frames.keep(exact_dedup(raw.where(F.col("reason").isNull()), previous_keys))
    representatives = marked.where(F.col("dup_of").isNull()).drop(*_PARSE_ONLY_COLUMNS)
    counts["unique"] = num_unique = representatives.count()
    if num_unique == 0:
        reasons = {r["reason"]: r["count"] for r in raw.groupBy("reason").count().collect()}
        raise InputError(f"every record was rejected ({reasons}): check the column flags")
    # What the write step needs of the parsed rows, without texts and vectors of kept rows.
    outcomes = frames.keep(raw.select(*_OUTCOME_COLUMNS), small=True)
    kept_columns = [KEPT_COLUMNS] if KEPT_COLUMNS in marked.columns else []
    duplicates = frames.keep(
        marked.where(F.col("dup_of").isNotNull()).select(*_DUPLICATE_COLUMNS, *kept_columns),
        small=True,
    )
    counts["exact_duplicates"] = duplicates.count()
    outcomes.count()
    return Unique(representatives, num_unique, outcomes, duplicates, marked)


def semantic_dedup_step(
    config: CurateConfig, clustered: DataFrame, frames: PersistedFrames, counts: dict[str, int]
) -> DataFrame:
    """The clustered rows with their SemDeDup decision (``keep``, ``dup_of``; cached)."""
    deduped = frames.keep(
        semantic_dedup(
            clustered,
            config.eps,
            config.near_eps,
            config.keep_policy,
            config.second_cluster,
            persist=lambda df: frames.keep(df, small=True),  # edge lists, released at close
        )
    )
    counts["removed"] = deduped.where(~F.col("keep")).count()
    return deduped
