"""Curation as the ``batchcraft curate`` command runs it: the curated dataset, then its report.

The pipeline's job (`batchcraft.pipeline.curate`) writes the dataset only and imports no
report; `curate` asks for the report afterwards, when ``write_report`` is true. The
command's flags (`add_curate_arguments`) mirror the CurateConfig fields, as the keys of
its ``--config`` file do.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from batchcraft.pipeline.config import CurateConfig
from batchcraft.pipeline.config_checks import (
    KEEP_POLICIES,
    NEAR_DEDUPS,
    PRECISIONS,
    REFERENCE_SCORES,
)
from batchcraft.pipeline.config_file import load_config_file

if TYPE_CHECKING:  # pyspark is imported by the job, when it runs
    from pyspark.sql import SparkSession


def curate(
    inputs: str | Sequence[str] | CurateConfig,
    out: str | None = None,
    *,
    spark: SparkSession | None = None,
    **params: Any,
) -> dict[str, Any]:
    """Curate a corpus into a dataset and write its report; return the manifest.

    Takes the arguments of `batchcraft.pipeline.curate`, which it runs first; then, when
    the config's ``write_report`` is true (the default), writes ``report.html`` and
    ``report.json`` into the dataset with `batchcraft.report.write_report`.

    Example:
        >>> from batchcraft.curation import curate
        >>> curate("corpus/*.jsonl", "curated/", id_column="id")  # doctest: +SKIP
    """
    from batchcraft.pipeline import curate as run_job

    config = CurateConfig.from_call(inputs, out, params)
    manifest = run_job(config, spark=spark)
    if config.write_report:
        from batchcraft.report import write_report

        write_report(config.out, storage_options=config.storage_options)
    return manifest


def _column_list(text: str) -> tuple[str, ...]:
    """``--drop-columns a,b`` as ``("a", "b")``."""
    return tuple(name.strip() for name in text.split(","))


# Flags whose parser default is None, so that a --config file may set them; "{default}"
# in a help line shows the CurateConfig default the job then uses.
_CURATE_FLAGS: dict[str, dict[str, Any]] = {
    "--text-column": {
        "dest": "text_column",
        "help": "column holding the text (default: {default})",
    },
    "--id-column": {
        "dest": "id_column",
        "help": "column holding a stable row id (default: none: a hash of file name, record "
        "position and text)",
    },
    "--pair-column": {
        "dest": "pair_column",
        "help": "second text column of paired data, embedded as pair_embedding (default: none)",
    },
    "--concept-column": {
        "dest": "concept_column",
        "help": "column of given concept labels, a list or comma-separated text (default: none)",
    },
    "--embedding-column": {
        "dest": "embedding_column",
        "help": "column of precomputed vectors (skips the embed stage): a list column in "
        "Parquet, a JSON array in JSONL and in CSV cells (default: none: the model embeds)",
    },
    "--label-column": {
        "dest": "label_column",
        "help": "column kept as the dataset's label, in its own type (default: none)",
    },
    "--ref-loss-column": {
        "dest": "ref_loss_column",
        "help": "column kept as ref_loss (float32); a value that is not a finite number "
        "rejects its record as bad_ref_loss (default: none)",
    },
    "--reference-scores": {
        "dest": "reference_scores",
        "choices": list(REFERENCE_SCORES),
        "help": "pairs: ref_loss is each pair's SigLIP sigmoid loss against negatives from the "
        "data, from the curation embeddings (needs --pair-column) (default: {default})",
    },
    "--drop-columns": {
        "dest": "drop_columns",
        "type": _column_list,
        "metavar": "A,B",
        "help": "input columns to leave out, comma-separated (default: none: every column the "
        "job does not read is kept under its own name and type)",
    },
    "--source": {
        "dest": "source",
        "help": "source name of every row (default: each file's name; a .txt directory's name)",
    },
    "--master": {"dest": "master", "help": "Spark master URL (default: {default})"},
    "--model": {
        "dest": "model",
        "help": "local sentence-transformers directory (default: the bundled all-MiniLM-L6-v2)",
    },
    "--precision": {
        "dest": "precision",
        "choices": list(PRECISIONS),
        "help": "encoder precision; auto: bf16 on CPUs with AMX/AVX-512-BF16, fp16 on CUDA, "
        "else fp32 (default: {default})",
    },
    "--num-clusters": {
        "dest": "num_clusters",
        "type": int,
        "help": "k-means clusters (default: about sqrt(rows), at least 40 rows per cluster)",
    },
    "--eps": {
        "dest": "eps",
        "type": float,
        "help": "rows at cosine >= 1 - eps within a cluster are duplicates (default: {default})",
    },
    "--near-eps": {
        "dest": "near_eps",
        "type": float,
        "help": "duplicates at cosine >= 1 - near_eps are labelled near (default: {default})",
    },
    "--keep-policy": {
        "dest": "keep_policy",
        "choices": list(KEEP_POLICIES),
        "help": "which row of a duplicate group survives, in semantic and MinHash dedup "
        "(default: {default})",
    },
    "--near-dedup": {
        "dest": "near_dedup",
        "choices": list(NEAR_DEDUPS),
        "help": "minhash: remove near duplicates by MinHash LSH on word n-grams, verified by "
        "their Jaccard, before embedding; none: skip it (default: {default})",
    },
    "--minhash-threshold": {
        "dest": "minhash_threshold",
        "type": float,
        "help": "rows at Jaccard >= this on their word n-gram shingles are near duplicates "
        "(default: {default})",
    },
    "--minhash-ngram-size": {
        "dest": "minhash_ngram_size",
        "type": int,
        "help": "words per MinHash shingle (default: {default})",
    },
    "--minhash-num-perm": {
        "dest": "minhash_num_perm",
        "type": int,
        "help": "MinHash values per row; the LSH bands use up to this many (default: {default})",
    },
    "--minhash-bands": {
        "dest": "minhash_bands",
        "type": int,
        "help": "LSH bands, with --minhash-rows (default: chosen from the threshold: a pair at "
        "the threshold becomes a candidate with probability >= 0.95)",
    },
    "--minhash-rows": {
        "dest": "minhash_rows",
        "type": int,
        "help": "MinHash values per LSH band, with --minhash-bands (default: chosen from the "
        "threshold)",
    },
    "--concepts": {
        "dest": "concepts_file",
        "help": "concept vocabulary file, one name per line, for zero-shot concepts "
        "(default: none)",
    },
    "--concept-threshold": {
        "dest": "concept_threshold",
        "type": float,
        "help": "zero-shot: least cosine between a row and a concept (default: {default})",
    },
    "--max-text-bytes": {
        "dest": "max_text_bytes",
        "type": int,
        "help": "longer texts (UTF-8 bytes) are rejected (default: {default})",
    },
    "--num-shards": {
        "dest": "num_shards",
        "type": int,
        "help": "output Parquet files (default: about 200k rows per shard)",
    },
    "--seed": {
        "dest": "seed",
        "type": int,
        "help": "seed of sampling and k-means (default: {default})",
    },
    "--work-dir": {
        "dest": "work_dir",
        "help": "directory or store prefix (s3://bucket/work) keeping finished stages for a "
        "rerun; 'none' keeps nothing (default: .OUT.work beside a local --out, none for an "
        "--out on a store)",
    },
    "--against": {
        "dest": "against",
        "action": "append",
        "metavar": "PREV",
        "help": "a curated dataset (path or URL) to curate against, repeatable: new rows with "
        "its ids are rejected, duplicates of its kept rows removed; it is never changed "
        "(default: none)",
    },
    "--kmeans-sample-size": {
        "dest": "kmeans_sample_size",
        "type": int,
        "help": "about how many rows k-means trains on (default: {default})",
    },
}


def add_curate_arguments(curate: argparse.ArgumentParser) -> None:
    """The arguments of ``batchcraft curate``: inputs, ``--out`` and a flag per setting."""
    curate.add_argument(
        "inputs",
        nargs="+",
        help="JSONL/Parquet/CSV files, directories of .txt files, globs; JSONL/CSV/TXT may be "
        ".gz/.bz2/.zst/.xz; local paths or URLs (s3://, gs://, hdfs://, …)",
    )
    curate.add_argument(
        "--out",
        required=True,
        help="output directory of the curated dataset, a local path or a URL (required)",
    )
    defaults = {field.name: field.default for field in dataclasses.fields(CurateConfig)}
    for flag, options in _CURATE_FLAGS.items():
        help_text = options["help"].format(default=defaults[options["dest"]])
        curate.add_argument(flag, default=None, **{**options, "help": help_text})
    curate.add_argument(
        "--config",
        help="TOML file whose keys mirror these flags; flags override it (default: none)",
    )
    curate.add_argument(
        "--overwrite",
        action="store_true",
        default=None,
        help="replace an existing --out (default: an existing --out is refused)",
    )
    curate.add_argument(
        "--no-second-cluster",
        dest="second_cluster",
        action="store_false",
        default=None,
        help="compare rows only inside their nearest cluster, SemDeDup as published (default: "
        "also inside their second-nearest cluster)",
    )
    curate.add_argument(
        "--recluster",
        action="store_true",
        default=None,
        help="with --against: refit k-means on the union of the new rows and the --against "
        "datasets' kept rows (default: the new rows take the --against dataset's centroids)",
    )
    curate.add_argument(
        "--no-report",
        dest="write_report",
        action="store_false",
        default=None,
        help="write no report.html/report.json (default: write them after the dataset)",
    )


def curate_config(args: argparse.Namespace) -> CurateConfig:
    """CurateConfig from a config file (if any) overridden by the flags actually given."""
    values: dict[str, Any] = load_config_file(args.config) if args.config else {}
    fields = {f.name for f in dataclasses.fields(CurateConfig)}
    values.update({k: v for k, v in vars(args).items() if k in fields and v is not None})
    values["inputs"] = tuple(args.inputs)
    values["out"] = args.out
    return CurateConfig(**values)
