"""The reference-scores stage: ``ref_loss`` of every embedded row from its pair, computed
per group of rows on the executors. `reference_scores_step` is this stage in the
curation job (``reference_scores = "pairs"``)."""

from __future__ import annotations

import math

import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from batchcraft.pipeline.config import CurateConfig
from batchcraft.pipeline.frames import PersistedFrames
from batchcraft.pipeline.scores.pairwise import (
    ROWS_PER_SCORE_GROUP,
    PairScoring,
    group_reference_losses,
)


def reference_scores(df: DataFrame, scoring: PairScoring, num_rows: int) -> DataFrame:
    """``id`` and ``ref_loss`` of every row of ``df`` (``id``, ``embedding``,
    ``pair_embedding``): its pair's SigLIP loss against negatives from its group.

    Rows are grouped by a hash of their id and the seed, about ROWS_PER_SCORE_GROUP to a
    group: a random sample of the data, the same on any cluster and partitioning.
    """
    groups = max(1, math.ceil(num_rows / ROWS_PER_SCORE_GROUP))
    group = F.pmod(F.xxhash64(F.col("id"), F.lit(scoring.seed)), F.lit(groups))

    def score(key: tuple[pa.Scalar, ...], table: pa.Table) -> pa.Table:
        return group_reference_losses(table, scoring, int(key[0].as_py()))

    members = df.select(group.alias("score_group"), "id", "embedding", "pair_embedding")
    return members.groupBy("score_group").applyInArrow(score, "id string, ref_loss float")


def reference_scores_step(
    config: CurateConfig,
    annotated: DataFrame,
    num_rows: int,
    frames: PersistedFrames,
    counts: dict[str, int],
) -> DataFrame:
    """The ``num_rows`` annotated rows with their ``ref_loss`` from their pair (the
    scores cached; the rows stay as cached as they were)."""
    scoring = PairScoring(
        config.reference_logit_scale,
        config.reference_logit_bias,
        config.reference_negatives,
        config.seed,
    )
    scores = frames.keep(reference_scores(annotated, scoring, num_rows), small=True)
    counts["scored"] = scores.count()
    return annotated.drop("ref_loss").join(scores, "id", "left")
