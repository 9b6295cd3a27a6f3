"""The MinHash near-dedup stage in Spark: band keys on the executors, candidate pairs from
the buckets, each verified by its true Jaccard, duplicate groups as connected components
(`batchcraft.pipeline.graph`), and the chain-safe keep rule per group (`keep`).

Nothing of size N reaches the driver: it collects counts only. Texts travel twice: once
through the signature pass, and once more for the rows of a candidate pair, whose shingle
sets are rebuilt beside each other to be compared. `minhash_dedup_step` is this stage in
the curation job, between exact dedup and embedding, so removed rows are never embedded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from batchcraft.pipeline.config import CurateConfig
from batchcraft.pipeline.config_checks import KeepPolicy, check_keep_policy
from batchcraft.pipeline.dedup.stage import Unique
from batchcraft.pipeline.frames import PersistedFrames
from batchcraft.pipeline.graph import connected_components
from batchcraft.pipeline.minhash.candidates import bucket_pairs, pair_jaccard
from batchcraft.pipeline.minhash.keep import keep_in_component
from batchcraft.pipeline.minhash.kept_keys import Previous, band_rows
from batchcraft.pipeline.minhash.ordering import with_priorities, without_fixed_pairs
from batchcraft.pipeline.minhash.settings import (
    DEFAULT_NGRAM_SIZE,
    DEFAULT_NUM_PERM,
    DEFAULT_THRESHOLD,
    MinhashSettings,
)
from batchcraft.pipeline.minhash.shingles import shingle_sets
from batchcraft.pipeline.read.column_types import KEPT_COLUMNS

DECISIONS_DDL = "id string, dup_of string, dup_jaccard double"  # keep.DECISIONS_SCHEMA
Persist = Callable[[DataFrame], DataFrame]


@dataclass(frozen=True)
class MinhashDuplicates:
    """What MinHash near dedup found.

    Attributes:
        decisions: ``id``, ``dup_of``, ``dup_jaccard`` of every removed row.
        candidate_pairs: Distinct pairs that shared an LSH bucket.
        verified_pairs: Candidates whose true Jaccard reached the threshold.
        groups: Connected components of the verified pairs (duplicate groups).
        largest_group: Rows in the largest group.
        rounds: Rounds the connected components took.
    """

    decisions: DataFrame
    candidate_pairs: int
    verified_pairs: int
    groups: int
    largest_group: int
    rounds: int

    def counts(self) -> dict[str, int]:
        """The figures the manifest records (the decisions aside)."""
        return {
            "candidate_pairs": self.candidate_pairs,
            "verified_pairs": self.verified_pairs,
            "rejected_pairs": self.candidate_pairs - self.verified_pairs,
            "groups": self.groups,
            "largest_group": self.largest_group,
            "component_rounds": self.rounds,
        }


def minhash_dedup(
    df: DataFrame,
    threshold: float = DEFAULT_THRESHOLD,
    ngram_size: int = DEFAULT_NGRAM_SIZE,
    num_perm: int = DEFAULT_NUM_PERM,
    bands: int | None = None,
    rows: int | None = None,
    keep_policy: KeepPolicy = "prototypical",
    seed: int = 0,
) -> DataFrame:
    """Mark MinHash near duplicates: rows whose word n-gram shingle sets have Jaccard >=
    ``threshold`` with a kept row (chain-safe keep rule, `batchcraft.pipeline.minhash.keep`).

    Input columns: ``id``, ``text`` (and ``pair_text``, whose shingles count too). Adds
    ``dup_of`` (the kept row), ``dup_kind`` (``minhash``), ``dup_jaccard`` (their Jaccard),
    null on kept rows, and ``keep``. The pair lists it caches on the way are released before
    it returns (the decisions are checkpointed): the session's cache is left as it was.

    Raises:
        ConfigError: a parameter out of range, or an unknown ``keep_policy``.
    """
    settings = MinhashSettings(threshold, ngram_size, num_perm, bands, rows, seed)
    check_keep_policy(keep_policy)
    cached: list[DataFrame] = []
    try:
        found = find_minhash_duplicates(df, settings, keep_policy, cache_into(cached))
    finally:
        for frame in cached:
            frame.unpersist()
    return mark_duplicates(df, found.decisions)


def cache_into(cached: list[DataFrame], cache: Persist = DataFrame.persist) -> Persist:
    """``cache``, remembering in ``cached`` what it cached (for the caller to release)."""

    def persist(frame: DataFrame) -> DataFrame:
        cached.append(cache(frame))
        return cached[-1]

    return persist


def find_minhash_duplicates(
    df: DataFrame,
    settings: MinhashSettings,
    keep_policy: KeepPolicy,
    persist: Persist,
    previous: Previous | None = None,
    keys: DataFrame | None = None,
) -> MinhashDuplicates:
    """The removed rows and what it took to find them (see `minhash_dedup`). With
    ``previous`` (an earlier dataset's kept rows), the rows of ``df`` are compared with
    those too, which are kept (`ordering`). ``keys``: the band keys of ``df``'s rows, when
    the caller has them already (computed here otherwise)."""
    columns = _text_columns(df)
    texts = df.select(*columns)
    keys = band_rows(texts, settings) if keys is None else keys
    fixed = None if previous is None else previous.texts.select("id")
    if previous is not None:
        texts = texts.unionByName(previous.texts.select(*columns))
        keys = keys.unionByName(previous.keys)
    candidates = persist(without_fixed_pairs(candidate_pairs(keys), fixed))
    num_candidates = candidates.count()
    empty = df.sparkSession.createDataFrame([], DECISIONS_DDL)
    if num_candidates == 0:  # most small corpora: no join of the texts to verify nothing
        return MinhashDuplicates(empty, 0, 0, 0, 0, 0)
    verified = persist(verified_pairs(texts, candidates, settings))
    num_verified = verified.count()
    if num_verified == 0:
        return MinhashDuplicates(empty, num_candidates, 0, 0, 0, 0)
    components = connected_components(verified)
    sizes = components.labels.groupBy("component").count()
    groups, largest = sizes.agg(F.count("*"), F.max("count")).first()  # type: ignore[misc]
    grouped = with_priorities(verified, keep_policy, fixed).join(
        components.labels.withColumnRenamed("id", "u"), "u"
    )
    # Checkpointed, not persisted: a persisted frame keeps its whole plan, and the plans
    # of every later stage would print (and hold) the pair lists' self-joins over again.
    decisions = grouped.groupBy("component").applyInArrow(_keep_in_component, DECISIONS_DDL)
    decisions = decisions.localCheckpoint()
    return MinhashDuplicates(
        decisions, num_candidates, num_verified, groups, largest, components.rounds
    )


def _keep_in_component(table: pa.Table) -> pa.Table:
    return keep_in_component(table)


def candidate_pairs(keys: DataFrame) -> DataFrame:
    """Distinct pairs ``u < v`` of ids that share a bucket in some band of ``keys``
    (`kept_keys.band_rows`)."""
    buckets = (
        keys.groupBy("band", "key")
        .agg(F.collect_list("id").alias("members"))
        .where(F.size("members") >= 2)
    )
    return buckets.select("members").mapInArrow(bucket_pairs, "u string, v string").distinct()


def verified_pairs(texts: DataFrame, candidates: DataFrame, settings: MinhashSettings) -> DataFrame:
    """The candidates at Jaccard >= threshold, with their ``jaccard`` (exact, on the
    shingle sets, rebuilt on the executor beside each other)."""
    threshold, ngram_size = settings.threshold, settings.ngram_size
    has_pairs = "pair_text" in texts.columns

    def side(name: str) -> DataFrame:
        renamed = [F.col("id").alias(name), F.col("text").alias(f"{name}_text")]
        if has_pairs:
            renamed.append(F.col("pair_text").alias(f"{name}_pair_text"))
        return texts.select(*renamed)

    def verify(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            left, right = (
                shingle_sets(batch.column(f"{end}_text"), ngram_size, _pair_texts(batch, end))
                for end in ("u", "v")
            )
            jaccard = pair_jaccard(left, right)
            similar = pa.array(jaccard >= threshold)
            yield pa.RecordBatch.from_arrays(
                [batch.column("u"), batch.column("v"), pa.array(jaccard, pa.float64())],
                names=["u", "v", "jaccard"],
            ).filter(similar)

    joined = candidates.join(side("u"), "u").join(side("v"), "v")
    return joined.mapInArrow(verify, "u string, v string, jaccard double")


def _text_columns(frame: DataFrame) -> list[str]:
    return ["id", "text", *(["pair_text"] if "pair_text" in frame.columns else [])]


def _pair_texts(batch: pa.RecordBatch, end: str | None = None) -> pa.Array | None:
    name = f"{end}_pair_text" if end else "pair_text"
    return batch.column(name) if name in batch.schema.names else None


def mark_duplicates(df: DataFrame, decisions: DataFrame) -> DataFrame:
    """``df`` with the decisions: ``dup_of``, ``dup_kind`` = ``minhash``, ``dup_jaccard``
    on removed rows (null on kept ones), ``keep``."""
    marked = df.drop("dup_of", "dup_kind", "dup_jaccard").join(decisions, "id", "left")
    return marked.withColumn(
        "dup_kind", F.when(F.col("dup_of").isNotNull(), F.lit("minhash"))
    ).withColumn("keep", F.col("dup_of").isNull())


_DUPLICATE_COLUMNS = (
    "id",
    "text",
    "pair_text",
    "source",
    "dup_of",
    "dup_kind",
    "dup_jaccard",
    "ref_loss",
)


@dataclass(frozen=True)
class NearUnique:
    """What the MinHash step leaves to the later steps.

    Attributes:
        representatives: The rows that are no duplicate of any kind yet (to embed).
        num_rows: How many there are.
        duplicates: The MinHash duplicates (cached), written later with the vectors of the
            row they duplicate; None when the step did not run.
        found: What MinHash found (for the manifest); None when the step did not run.
        keys: The band keys of the rows the step compared (cached), for the write step to
            keep those of the kept rows with the dataset (`kept_keys`); None when the step
            did not run.
    """

    representatives: DataFrame
    num_rows: int
    duplicates: DataFrame | None = None
    found: MinhashDuplicates | None = None
    keys: DataFrame | None = None


def minhash_dedup_step(
    config: CurateConfig,
    unique: Unique,
    frames: PersistedFrames,
    counts: dict[str, int],
    previous: Previous | None = None,
) -> NearUnique:
    """Mark the MinHash duplicates among the rows left by exact dedup (and of an earlier
    dataset's ``previous`` rows, see `find_minhash_duplicates`); the rest go on."""
    settings = MinhashSettings.from_config(config)
    texts = unique.representatives.select(*_text_columns(unique.representatives))
    # on disk: 18 band rows per row (about 20 M rows at 1 M documents) wait until the write
    keys = frames.keep(band_rows(texts, settings))
    cached: list[DataFrame] = []
    found = find_minhash_duplicates(
        unique.representatives,
        settings,
        config.keep_policy,
        cache_into(cached, lambda df: frames.keep(df, small=True)),
        previous,
        keys,
    )
    frames.release(*cached)  # the pair lists: the decisions are checkpointed
    marked = mark_duplicates(unique.representatives, found.decisions)
    kept_columns = [KEPT_COLUMNS] if KEPT_COLUMNS in marked.columns else []
    duplicates = frames.keep(
        marked.where(~F.col("keep")).select(*_DUPLICATE_COLUMNS, *kept_columns)
    )
    counts["candidate_pairs"] = found.candidate_pairs
    counts["duplicates"] = num_duplicates = duplicates.count()
    representatives = marked.where(F.col("keep")).drop("keep", "dup_jaccard")
    return NearUnique(representatives, unique.num_rows - num_duplicates, duplicates, found, keys)
