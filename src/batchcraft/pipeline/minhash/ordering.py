"""The keep order of MinHash duplicate groups in Spark: each row's priority, and the rows
of an earlier dataset (``curate --against``) put first and never paired with each other.

An earlier dataset's kept rows take part in the groups so that a new row resembling one
of them is removed, pointing at it; they are never removed themselves: they come before
every new row in the keep order, and no pair of two of them is formed (the chain-safe
rule removes a row only for an edge from an earlier kept row).
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from batchcraft.pipeline.config_checks import KeepPolicy
from batchcraft.pipeline.minhash.keep import JACCARD_UNITS

FIXED_PRIORITY = -(1 << 62)
"""Priority of an earlier dataset's row: below any sum of Jaccard units of a new row."""


def without_fixed_pairs(candidates: DataFrame, fixed: DataFrame | None) -> DataFrame:
    """The candidate pairs ``u``, ``v`` but those of two ``fixed`` ids (an earlier
    dataset's rows, compared with the new rows only)."""
    if fixed is None:
        return candidates
    marks = fixed.select("id", F.lit(True).alias("fixed")).dropDuplicates(["id"])
    both = F.coalesce(F.col("u_fixed"), F.lit(False)) & F.coalesce(F.col("v_fixed"), F.lit(False))
    return (
        candidates.join(
            marks.withColumnRenamed("id", "u").withColumnRenamed("fixed", "u_fixed"), "u", "left"
        )
        .join(marks.withColumnRenamed("id", "v").withColumnRenamed("fixed", "v_fixed"), "v", "left")
        .where(~both)
        .select("u", "v")
    )


def with_priorities(
    verified: DataFrame, keep_policy: KeepPolicy, fixed: DataFrame | None = None
) -> DataFrame:
    """The verified pairs with each end's priority (`keep.priority_of_score`): the sum of
    its Jaccard over its pairs, in integer millionths so that any order adds it alike;
    `FIXED_PRIORITY` for the ``fixed`` ids."""
    ends = verified.select(F.col("u").alias("id"), "jaccard").unionByName(
        verified.select(F.col("v").alias("id"), "jaccard")
    )
    units = F.round(F.col("jaccard") * JACCARD_UNITS).cast("long")
    scores = ends.groupBy("id").agg(F.sum(units).alias("score"))
    if keep_policy == "prototypical":
        priority = -F.col("score")
    elif keep_policy == "hardest":
        priority = F.col("score")
    else:
        priority = F.lit(0).cast("long")
    if fixed is not None:
        marks = fixed.select("id", F.lit(True).alias("fixed")).dropDuplicates(["id"])
        scores = scores.join(marks, "id", "left")
        priority = F.when(F.col("fixed"), F.lit(FIXED_PRIORITY)).otherwise(priority)
    priorities = scores.select("id", priority.alias("priority"))
    return verified.join(
        priorities.withColumnRenamed("id", "u").withColumnRenamed("priority", "u_priority"), "u"
    ).join(priorities.withColumnRenamed("id", "v").withColumnRenamed("priority", "v_priority"), "v")
