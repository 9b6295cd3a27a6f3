"""The read+validate stage: every input record parsed on the executors, then the checks
that need the whole corpus (an id used twice, a precomputed vector of another length).

Every record stays one row; a record failing a check keeps its row, with a ``reason``
and a ``detail`` saying what was wrong and where. `read_step` is this stage in the
curation job: what it caches and counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from batchcraft.errors import InputError
from batchcraft.pipeline.config import CurateConfig
from batchcraft.pipeline.frames import PersistedFrames
from batchcraft.pipeline.read.column_plan import ColumnPlan, Observation, plan_columns
from batchcraft.pipeline.read.column_survey import (
    SurveyedType,
    survey_json_chunk,
    survey_skipped,
    with_surveyed_types,
)
from batchcraft.pipeline.read.column_types import KEPT_COLUMNS, kept_struct
from batchcraft.pipeline.read.inputs import Chunk, InputFile, plan_chunks, position_words
from batchcraft.pipeline.read.parse import (
    RAW_PREVIEW_CHARS,
    ColumnMapping,
    parse_chunk,
)
from batchcraft.pipeline.spark_schema import spark_type

RAW_DDL = (
    "file_index int, record long, source string, id string, text string, pair_text string, "
    "given_concepts array<string>, given_embedding array<float>, ref_loss float, "
    "reason string, detail string, raw string, dedup_key string"
)
CHUNK_DDL = (
    "file_index int, path string, format string, source string, start long, end long, "
    "paths array<string>, file_indices array<int>, storage string"
)


def read_corpus(spark: SparkSession, chunks: list[Chunk], mapping: ColumnMapping) -> DataFrame:
    """Parse and validate every chunk on the executors: one row per input record, with
    the kept input columns (``mapping.kept``) in the KEPT_COLUMNS struct."""
    schema = T.StructType.fromDDL(RAW_DDL)
    assert isinstance(schema, T.StructType)
    if mapping.kept:
        schema = schema.add(KEPT_COLUMNS, spark_type(kept_struct(mapping.kept)))

    def parse(chunk: Chunk) -> Iterator[pa.RecordBatch]:
        return parse_chunk(chunk, mapping)

    return _map_chunks(spark, chunks, parse, schema)


def survey_json_types(
    spark: SparkSession, chunks: list[Chunk], skipped: frozenset[str]
) -> list[tuple[int, SurveyedType]]:
    """The types the records of the JSONL ``chunks`` hold under each key (but the
    ``skipped`` ones), read on the executors: (file index, type) in input order."""

    def survey(chunk: Chunk) -> Iterator[pa.RecordBatch]:
        found = survey_json_chunk(chunk, skipped)
        yield pa.RecordBatch.from_pydict(
            {
                "file_index": pa.array([chunk.file_index] * len(found), pa.int32()),
                "start": pa.array([chunk.start] * len(found), pa.int64()),
                "position": pa.array([item.position for item in found], pa.int32()),
                "name": pa.array([item.name for item in found], pa.string()),
                "type": pa.array([_serialized(item.type) for item in found], pa.binary()),
                "problem": pa.array([item.problem for item in found], pa.string()),
            }
        )

    ddl = "file_index int, start long, position int, name string, type binary, problem string"
    jsonl = [chunk for chunk in chunks if chunk.format == "jsonl"]
    rows = _map_chunks(spark, jsonl, survey, ddl).collect() if jsonl else []
    rows.sort(key=lambda row: (row["file_index"], row["start"], row["position"]))
    return [
        (
            row["file_index"],
            SurveyedType(row["name"], row["position"], _deserialized(row["type"]), row["problem"]),
        )
        for row in rows
    ]


def plan_with_survey(
    spark: SparkSession, config: CurateConfig, files: list[InputFile], observed: list[Observation]
) -> ColumnPlan:
    """The columns the dataset keeps, once the JSONL inputs' records told their types."""
    surveyed = survey_json_types(spark, plan_chunks(files), survey_skipped(config))
    return plan_columns(with_surveyed_types(observed, files, surveyed), config)


def _map_chunks(
    spark: SparkSession,
    chunks: list[Chunk],
    work: Callable[[Chunk], Iterator[pa.RecordBatch]],
    schema: T.StructType | str,
) -> DataFrame:
    """``work`` on every chunk, one chunk per partition, on the executors."""
    rows = [tuple(asdict(chunk).values()) for chunk in chunks]
    plan = spark.createDataFrame(rows, CHUNK_DDL).repartition(max(1, len(chunks)))

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for values in batch.to_pylist():
                values["paths"] = tuple(values["paths"] or ())
                values["file_indices"] = tuple(values["file_indices"] or ())
                yield from work(Chunk(**values))

    return plan.mapInArrow(run, schema)


def _serialized(kind: pa.DataType | None) -> bytes | None:
    """An Arrow type as bytes (an IPC schema of one field), to send to the driver."""
    return None if kind is None else pa.schema([pa.field("type", kind)]).serialize().to_pybytes()


def _deserialized(data: bytes | None) -> pa.DataType | None:
    return None if data is None else pa.ipc.read_schema(pa.py_buffer(data)).field("type").type


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
        .withColumn("raw", F.when(F.col("_repeat"), parsed_preview(df)).otherwise(F.col("raw")))
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


def parsed_preview(df: DataFrame, vector_column: str = "given_embedding") -> F.Column:
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
            "raw", F.when(F.col("_wrong"), parsed_preview(df, column)).otherwise(F.col("raw"))
        )
        .withColumn(column, F.when(~F.col("_wrong"), F.col(column)))
        .drop("_wrong")
    )


def read_step(
    spark: SparkSession,
    config: CurateConfig,
    files: list[InputFile],
    columns: ColumnPlan,
    frames: PersistedFrames,
    counts: dict[str, int],
) -> tuple[DataFrame, DataFrame]:
    """One row per input record, rejected ones with their reason, and the ``columns``
    the dataset keeps; and the cached parse it derives from (release both once the
    records are no longer read)."""
    mapping = ColumnMapping(
        config.text_column,
        config.id_column,
        config.pair_column,
        config.concept_column,
        config.embedding_column,
        config.max_text_bytes,
        config.ref_loss_column,
        columns.carried,
    )
    # Cached and counted first: a shuffle's partition count is fixed when its frame is
    # cached, so the duplicate-id window must be built after `scale_shuffles`.
    parsed = frames.keep(read_corpus(spark, plan_chunks(files), mapping))
    counts["rows"] = parsed.count()
    if counts["rows"] == 0:
        raise InputError(f"the inputs {[f.path for f in files]} hold no records")
    frames.scale_shuffles(counts["rows"])
    raw = parsed
    if config.embedding_column:
        dimension = embedding_dimension(parsed)
        if dimension is not None:
            raw = reject_wrong_dimension(raw, dimension)
    if config.id_column:  # a shuffle: cache its result rather than redo it for every reader
        raw = frames.keep(reject_duplicate_ids(raw, files))
        raw.count()
        frames.release(parsed)
    return raw, parsed
