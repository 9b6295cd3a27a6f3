"""The pipeline stages as Spark DataFrame -> DataFrame functions.

Each stage is a thin adapter: it ships a pure function (``parse``, ``embed``, ``cluster``,
``semdedup``, ``concepts``) to the executors with ``mapInArrow``/``applyInArrow`` and wires
the shuffles. Teams with their own Spark job can call these directly on their DataFrames::

    df = spark.read.parquet("corpus/")                      # needs columns id, text
    df = embed(df, EncoderSpec(resolve_model_path(None)))   # + embedding
    centroids = fit_centroids(df, num_clusters=100)
    df = assign_clusters(df, centroids)                     # + cluster, centroid_sim, ...
    df = semantic_dedup(df, eps=0.1)                        # + max_sim, dup_of, dup_kind, keep
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from batchcraft.errors import BatchcraftError
from batchcraft.pipeline.arrays import to_list_array, to_matrix
from batchcraft.pipeline.cluster import assign, train_centroids
from batchcraft.pipeline.concepts import zero_shot_concepts
from batchcraft.pipeline.config import (
    DEFAULT_KMEANS_ITERATIONS,
    DEFAULT_KMEANS_SAMPLE_SIZE,
    DEFAULT_NEAR_EPS,
    KeepPolicy,
    check_keep_policy,
)
from batchcraft.pipeline.embed import EncoderSpec, cached_encoder, unit_norm
from batchcraft.pipeline.inputs import Chunk, InputFile, position_words
from batchcraft.pipeline.parse import RAW_PREVIEW_CHARS, ColumnMapping, parse_chunk
from batchcraft.pipeline.semdedup import cluster_edges, decide_edges

RAW_DDL = (
    "file_index int, record long, source string, id string, text string, pair_text string, "
    "given_concepts array<string>, given_embedding array<float>, reason string, detail string, "
    "raw string, dedup_key string"
)
_VECTOR = T.ArrayType(T.FloatType())
CHUNK_DDL = (
    "file_index int, path string, format string, source string, start long, end long, "
    "paths array<string>, file_indices array<int>"
)


def read_corpus(spark: SparkSession, chunks: list[Chunk], mapping: ColumnMapping) -> DataFrame:
    """Parse and validate every chunk on the executors: one row per input record."""
    rows = [tuple(asdict(chunk).values()) for chunk in chunks]
    plan = spark.createDataFrame(rows, CHUNK_DDL).repartition(max(1, len(chunks)))

    def parse(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for values in batch.to_pylist():
                values["paths"] = tuple(values["paths"] or ())
                values["file_indices"] = tuple(values["file_indices"] or ())
                yield from parse_chunk(Chunk(**values), mapping)

    return plan.mapInArrow(parse, RAW_DDL)


def reject_duplicate_ids(df: DataFrame, files: Sequence[InputFile] = ()) -> DataFrame:
    """Reject, as ``duplicate_id``, every valid record whose id an earlier valid record has.

    Only valid records compete for an id: a record already rejected for its own reason
    (say ``missing_text``) keeps that reason and does not take the id from a later valid
    record, which is kept. Among valid records the first in input order (file, then record
    position) keeps the id. A rejected repeat gets a ``raw`` preview of its parsed fields,
    and a ``detail`` that says where the record that kept the id is, so the pair can be
    found: in ``files[file_index]`` (the input files as planned; without them, only the
    file's index is named).
    """
    valid = F.col("reason").isNull()
    # Valid records sort first, so a valid record's row number counts valid records only.
    first = Window.partitionBy("id").orderBy(~valid, "file_index", "record")
    repeat = valid & (F.row_number().over(first) > 1)
    kept_by = F.first(F.struct("file_index", "record")).over(first)
    marked = df.withColumn("_repeat", repeat).withColumn("_kept", F.when(repeat, kept_by))
    detail = F.concat(F.lit("id already used by the valid record in "), F.col("_kept_at"))
    return (
        _with_kept_location(marked, files)
        .withColumn(
            "reason", F.when(F.col("_repeat"), F.lit("duplicate_id")).otherwise(F.col("reason"))
        )
        .withColumn("detail", F.when(F.col("_repeat"), detail).otherwise(F.col("detail")))
        .withColumn("raw", F.when(F.col("_repeat"), _parsed_preview(df)).otherwise(F.col("raw")))
        .select(*df.columns)
    )


def _with_kept_location(marked: DataFrame, files: Sequence[InputFile]) -> DataFrame:
    """Add ``_kept_at``: where the record ``_kept`` (file index, position) is, in words.

    The words of each file come from a small broadcast table rather than an expression
    holding every path: a corpus may be many thousands of files.
    """
    position = F.col("_kept.record").cast("string")
    if not files:
        file_index = F.col("_kept.file_index").cast("string")
        at = F.concat(F.lit("input file #"), file_index, F.lit(" at position "), position)
        return marked.withColumn("_kept_at", at)
    words = marked.sparkSession.createDataFrame(
        [(index, *position_words(file)) for index, file in enumerate(files)],
        "_kept_file int, _before string, _after string",
    )
    located = marked.join(
        F.broadcast(words), F.col("_kept.file_index") == F.col("_kept_file"), "left"
    )
    return located.withColumn("_kept_at", F.concat("_before", position, "_after"))


def _parsed_preview(df: DataFrame, vector_column: str = "given_embedding") -> F.Column:
    """The ``raw`` preview of a record rejected after parsing (its raw text is not kept):
    its parsed fields as JSON, at most RAW_PREVIEW_CHARS long."""
    fields = {
        "id": "id",
        "text": "text",
        "pair_text": "pair_text",
        "concepts": "given_concepts",
        "embedding": vector_column,
    }
    record = F.struct(*(F.col(c).alias(name) for name, c in fields.items() if c in df.columns))
    return F.substring(F.to_json(record), 1, RAW_PREVIEW_CHARS)


def embedding_dimension(df: DataFrame, column: str = "given_embedding") -> int | None:
    """The expected length of precomputed vectors: the most common one among valid records.

    A tie goes to the length seen first in input order. None when no record is valid.
    """
    lengths = (
        df.where(F.col("reason").isNull())
        .groupBy(F.size(column).alias("length"))
        .agg(
            F.count(F.lit(1)).alias("rows"), F.min(F.struct("file_index", "record")).alias("first")
        )
        .orderBy(F.desc("rows"), F.asc("first"))
    )
    top = lengths.first()
    return None if top is None else int(top["length"])


def reject_wrong_dimension(
    df: DataFrame, dimension: int, column: str = "given_embedding"
) -> DataFrame:
    """Reject, as ``embedding_dimension``, the valid records whose vector is not ``dimension`` long.

    Their vector is dropped and ``raw`` keeps a preview of the row (id, texts, vector).
    """
    wrong = F.col("reason").isNull() & (F.size(column) != dimension)
    detail = F.format_string(
        f"embedding has %d values where the corpus's vectors have {dimension} "
        "(the most common length)",
        F.size(column),
    )
    return (
        df.withColumn("_wrong", wrong)
        .withColumn(
            "reason",
            F.when(F.col("_wrong"), F.lit("embedding_dimension")).otherwise(F.col("reason")),
        )
        .withColumn("detail", F.when(F.col("_wrong"), detail).otherwise(F.col("detail")))
        .withColumn(
            "raw", F.when(F.col("_wrong"), _parsed_preview(df, column)).otherwise(F.col("raw"))
        )
        .withColumn(column, F.when(~F.col("_wrong"), F.col(column)))
        .drop("_wrong")
    )


def exact_dedup(df: DataFrame) -> DataFrame:
    """Mark exact duplicates (same normalised text and pair): the smallest id of each group is kept.

    Adds ``dup_of`` (the kept id) and ``dup_kind = 'exact'`` on the others, null on the kept row.
    """
    by_key = Window.partitionBy("dedup_key")
    representative = F.min("id").over(by_key)
    is_duplicate = F.col("id") != representative
    return df.withColumn("dup_of", F.when(is_duplicate, representative)).withColumn(
        "dup_kind", F.when(is_duplicate, F.lit("exact"))
    )


def embed(df: DataFrame, spec: EncoderSpec, has_pairs: bool = False) -> DataFrame:
    """Add ``embedding`` (and ``pair_embedding`` with pairs): unit-norm sentence embeddings."""

    def encode(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        encoder = cached_encoder(spec)  # loaded once per Python worker, reused across tasks
        for batch in batches:
            table = pa.Table.from_batches([batch])
            vectors = encoder.encode(table.column("text").to_pylist())
            table = table.append_column("embedding", to_list_array(vectors))
            if has_pairs:
                pair_vectors = encoder.encode(table.column("pair_text").to_pylist())
                table = table.append_column("pair_embedding", to_list_array(pair_vectors))
            yield from table.to_batches()

    vectors = {"embedding": _VECTOR, **({"pair_embedding": _VECTOR} if has_pairs else {})}
    return df.mapInArrow(encode, _extend(df, vectors))


def normalize_embeddings(df: DataFrame, column: str = "given_embedding") -> DataFrame:
    """Add ``embedding``: the precomputed vectors of ``column`` scaled to unit norm."""

    def normalize(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            vectors = unit_norm(to_matrix(batch.column(column)))
            yield batch.append_column("embedding", to_list_array(vectors))

    return df.mapInArrow(normalize, _extend(df, {"embedding": _VECTOR}))


@dataclass(frozen=True)
class KMeansFit:
    """Centroids of a k-means fit and the number of rows it was trained on.

    Attributes:
        centroids: (num_clusters, d) float32 unit-norm centroids.
        sample_size: Rows in the hash-picked sample (about the requested size, not exactly).
    """

    centroids: np.ndarray
    sample_size: int


def fit_centroids(
    df: DataFrame,
    num_clusters: int,
    sample_size: int = DEFAULT_KMEANS_SAMPLE_SIZE,
    iterations: int = DEFAULT_KMEANS_ITERATIONS,
    seed: int = 0,
    num_rows: int | None = None,
) -> np.ndarray:
    """The centroids of `fit_kmeans` (same arguments)."""
    return fit_kmeans(df, num_clusters, sample_size, iterations, seed, num_rows).centroids


def fit_kmeans(
    df: DataFrame,
    num_clusters: int,
    sample_size: int = DEFAULT_KMEANS_SAMPLE_SIZE,
    iterations: int = DEFAULT_KMEANS_ITERATIONS,
    seed: int = 0,
    num_rows: int | None = None,
) -> KMeansFit:
    """Train spherical k-means on a bounded deterministic sample, in one executor task.

    Rows are picked by a hash of their id (a distributed filter, about ``sample_size`` of
    them) and shuffled into a single partition, where FAISS trains on them in id order
    (the same sample order on any cluster layout). Only the centroids and the sample's
    row count reach the driver, so its memory does not depend on the sample or the corpus.
    """
    total = df.count() if num_rows is None else num_rows
    buckets = 1 << 30
    cutoff = int(min(1.0, sample_size / max(total, 1)) * buckets)
    chosen = F.pmod(F.xxhash64(F.col("id"), F.lit(seed)), F.lit(buckets)) < F.lit(cutoff)
    sample = df.where(chosen).select("id", "embedding").repartition(1)

    def train(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        received = [batch for batch in batches if batch.num_rows]
        if not received:
            return
        table = pa.Table.from_batches(received)
        del received
        vectors = _sorted_by_id(table)
        del table  # the task holds one copy of the sample while FAISS trains
        centroids = train_centroids(
            vectors,
            num_clusters,
            iterations,
            seed,
            in_place=True,
            threads=len(os.sched_getaffinity(0)),
        )
        rows = pa.array(np.full(len(centroids), len(vectors), dtype=np.int64))
        yield pa.RecordBatch.from_arrays([to_list_array(centroids), rows], ["centroid", "rows"])

    found = sample.mapInArrow(train, "centroid array<float>, rows long").toArrow()
    if found.num_rows == 0:
        raise BatchcraftError(
            f"the k-means sample of about {sample_size} of {total} rows came out empty; "
            "raise kmeans_sample_size"
        )
    return KMeansFit(to_matrix(found.column("centroid")), int(found.column("rows")[0].as_py()))


def _sorted_by_id(sample: pa.Table) -> np.ndarray:
    """The sample's vectors as one (n, d) float32 matrix in id order, each chunk scattered
    straight to its rows (no intermediate full-size copies)."""
    ids = np.asarray(sample.column("id").to_pylist(), dtype=object)
    rank = np.empty(len(ids), dtype=np.int64)
    rank[np.argsort(ids, kind="stable")] = np.arange(len(ids))
    chunks = sample.column("embedding").chunks
    width = next((len(c[0]) for c in chunks if len(c)), 0)
    vectors = np.empty((len(ids), width), dtype=np.float32)
    start = 0
    for chunk in chunks:
        vectors[rank[start : start + len(chunk)]] = to_matrix(chunk, width)
        start += len(chunk)
    return vectors


def assign_clusters(df: DataFrame, centroids: np.ndarray) -> DataFrame:
    """Add ``cluster``/``centroid_sim`` and the second-nearest ``second_cluster``/``second_sim``."""
    shared = df.sparkSession.sparkContext.broadcast(np.asarray(centroids, dtype=np.float32))

    def assign_batch(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            result = assign(to_matrix(batch.column("embedding")), shared.value)
            columns = {
                "cluster": result.cluster,
                "centroid_sim": result.centroid_sim,
                "second_cluster": result.second_cluster,
                "second_sim": result.second_sim,
            }
            for name, values in columns.items():
                batch = batch.append_column(name, pa.array(values))
            yield batch

    added = {
        "cluster": T.IntegerType(),
        "centroid_sim": T.FloatType(),
        "second_cluster": T.IntegerType(),
        "second_sim": T.FloatType(),
    }
    return df.mapInArrow(assign_batch, _extend(df, added))


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
    threshold, near_threshold = 1.0 - eps, 1.0 - near_eps
    ranked = df.withColumn("priority", _priority(keep_policy))
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
    members = ranked.select(F.col("cluster").alias("group"), "id", "priority", "embedding")
    if second_cluster:
        guests = ranked.where(F.col("second_cluster") >= 0).select(
            F.col("second_cluster").alias("group"), "id", "priority", "embedding"
        )
        members = members.unionByName(guests)

    def group_edges(table: pa.Table) -> pa.Table:
        table = table.sort_by([("priority", "ascending"), ("id", "ascending")])
        ids = np.asarray(table.column("id").to_pylist(), dtype=object)
        edges, max_sim = cluster_edges(to_matrix(table.column("embedding")), threshold)
        return pa.table(
            {
                "u": pa.array(np.concatenate([ids[edges.source], ids]), pa.string()),
                "v": pa.array(
                    np.concatenate([ids[edges.target], np.full(len(ids), None)]), pa.string()
                ),
                "sim": pa.array(np.concatenate([edges.similarity, max_sim]).astype(np.float32)),
            }
        )

    found = members.groupBy("group").applyInArrow(group_edges, "u string, v string, sim float")
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


def annotate_concepts(
    df: DataFrame,
    concept_embeddings: np.ndarray,
    names: list[str],
    threshold: float,
    max_concepts: int,
) -> DataFrame:
    """Add ``concepts``: zero-shot concept names by embedding similarity to the vocabulary."""
    shared = df.sparkSession.sparkContext.broadcast(
        np.asarray(concept_embeddings, dtype=np.float32)
    )

    def annotate(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            concepts = zero_shot_concepts(
                to_matrix(batch.column("embedding")), shared.value, names, threshold, max_concepts
            )
            yield batch.append_column("concepts", pa.array(concepts, pa.list_(pa.string())))

    return df.mapInArrow(annotate, _extend(df, {"concepts": T.ArrayType(T.StringType())}))


def _extend(df: DataFrame, added: Mapping[str, T.DataType]) -> T.StructType:
    """The DataFrame's schema plus new columns (without mutating the cached ``df.schema``)."""
    return T.StructType([*df.schema.fields, *(T.StructField(n, t) for n, t in added.items())])
