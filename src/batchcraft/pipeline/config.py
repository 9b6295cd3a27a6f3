"""Configuration of the curation job: one frozen dataclass, validated on construction.

A TOML file (``--config curate.toml``) mirrors the CLI flags: its keys are the field
names below, and flags given on the command line override it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from batchcraft.dataset.schema import EmbeddingDtype, similarity_threshold
from batchcraft.errors import ConfigError
from batchcraft.pipeline.config_checks import (
    KeepPolicy,
    NearDedup,
    Precision,
    ReferenceScores,
    check_config,
    column_names,
)
from batchcraft.pipeline.minhash import settings as minhash
from batchcraft.storage import redacted

DEFAULT_EPS = 0.08
"""Default SemDeDup eps (duplicates at cosine >= 0.92), chosen from benchmarks/choose_eps.py."""
DEFAULT_NEAR_EPS = 0.03
"""Default eps of the ``near`` label, for the job and ``semantic_dedup``."""
DEFAULT_KMEANS_SAMPLE_SIZE = 100_000
"""Default number of rows (about) that k-means trains on, for the job and ``fit_centroids``."""
DEFAULT_KMEANS_ITERATIONS = 20
"""Default Lloyd iterations of k-means, for the job, ``fit_centroids`` and ``train_centroids``."""
DEFAULT_REFERENCE_LOGIT_SCALE = 10.0
"""SigLIP temperature t of pair reference scores (the ``jest`` selector's default too)."""
DEFAULT_REFERENCE_LOGIT_BIAS = -10.0
"""SigLIP bias b of pair reference scores (the ``jest`` selector's default too)."""
DEFAULT_REFERENCE_NEGATIVES = 255
"""Negatives K each pair is scored against: a SigLIP batch of 256."""


@dataclass(frozen=True)
class CurateConfig:
    """Every parameter of ``batchcraft curate``.

    Attributes:
        inputs: Input paths (files, directories of ``.txt`` files, or globs).
        out: Output directory of the curated dataset.
        text_column: Column (JSONL/Parquet/CSV field) holding the text.
        id_column: Column holding a stable row id; ``None`` derives one from content and position.
        pair_column: Second text column for paired (contrastive) data, e.g. ``answer``.
        concept_column: Column of given concept labels (list or comma-separated string).
        embedding_column: Column of precomputed embeddings; when set, the embed stage is skipped.
            A list of numbers in JSONL and Parquet; in CSV/TSV, text holding a JSON array
            (``"[0.1, -0.2]"``), rejected as ``malformed_record`` when it is not one.
            Records whose vector length is not the most common one among the valid records
            are rejected as ``embedding_dimension``; vectors holding NaN, ±inf or only zeros
            (which cannot be scaled to unit norm) as ``malformed_record``.
        label_column: Column kept as ``label``, in its type (a number, bool or string).
        ref_loss_column: Column kept as float32 ``ref_loss``; a value that is not a finite
            number rejects its record (``bad_ref_loss``), a null stays null.
        drop_columns: Input columns left out ("a,b" is split); every other column the job
            does not read is kept under its own name and type.
        reference_scores: ``pairs``: ``ref_loss`` from the pair embeddings (`scores.pairwise`).
        reference_logit_scale: SigLIP temperature t of the pair reference scores.
        reference_logit_bias: SigLIP bias b of the pair reference scores.
        reference_negatives: Negatives K each pair is scored against.
        source: Source name for every input; ``None`` names each source after its file.
        master: Spark master URL (``local[*]``, ``local-cluster[2,1,2048]``, ``spark://...``).
        model: Local sentence-transformers directory; ``None`` is the bundled all-MiniLM-L6-v2.
        precision: Encoder precision; ``auto`` picks bf16/fp16 only where the hardware runs it natively.
        encode_batch_size: Texts per forward pass of the encoder.
        num_clusters: k-means clusters; ``None`` derives it from the number of rows.
        kmeans_iterations: Lloyd iterations of the spherical k-means.
        kmeans_sample_size: About how many rows k-means trains on (in one executor task).
        eps: SemDeDup threshold: rows at cosine >= 1 - eps within a cluster are duplicates.
        near_eps: Semantic duplicates at cosine >= 1 - near_eps are labelled ``near``.
        keep_policy: Which row of a duplicate group survives (semantic and MinHash dedup).
        near_dedup: ``minhash``: MinHash LSH near dedup before embedding; ``none``: none.
        minhash_threshold: Rows at Jaccard >= this on their word n-gram shingles are duplicates.
        minhash_ngram_size: Words per shingle.
        minhash_num_perm: MinHash values per row (the LSH bands use up to this many).
        minhash_bands: LSH bands, given with ``minhash_rows``: no choice from the threshold.
        minhash_rows: Signature values per LSH band (given with ``minhash_bands``).
        second_cluster: Also compare each row within its second-nearest cluster.
        concepts_file: Concept vocabulary for zero-shot concept annotation (one name per line).
        concept_threshold: Minimum cosine between a row and a concept name to annotate it.
        max_concepts: Most concepts annotated per row.
        max_text_bytes: Texts longer than this (UTF-8 bytes) are rejected.
        num_shards: Output Parquet files; ``None`` derives it from the number of rows.
        embedding_dtype: Stored embedding precision.
        seed: Seed of sampling and k-means.
        overwrite: Replace an existing output directory.
        write_report: Write report.html/report.json after curation. Read by the callers
            that write the report (``batchcraft.curation.curate``, the ``batchcraft
            curate`` and ``demo`` commands), not by the job: ``batchcraft.pipeline.curate``
            writes the dataset only.
        storage_options: Keyword arguments of the filesystem of every URL the run reads or
            writes (`batchcraft.storage.resolve`); recorded with secret-looking values hidden.
        work_dir: Finished stages kept for a rerun (`pipeline.resume`); None: ``.OUT.work``.
        against: Curated datasets to curate against (`pipeline.incremental`).
        recluster: With ``against``: refit k-means on the union, not take PREV's centroids.
    """

    inputs: tuple[str, ...]
    out: str
    text_column: str = "text"
    id_column: str | None = None
    pair_column: str | None = None
    concept_column: str | None = None
    embedding_column: str | None = None
    label_column: str | None = None
    ref_loss_column: str | None = None
    drop_columns: tuple[str, ...] = ()
    reference_scores: ReferenceScores = "none"
    reference_logit_scale: float = DEFAULT_REFERENCE_LOGIT_SCALE
    reference_logit_bias: float = DEFAULT_REFERENCE_LOGIT_BIAS
    reference_negatives: int = DEFAULT_REFERENCE_NEGATIVES
    source: str | None = None
    master: str = "local[*]"
    model: str | None = None
    precision: Precision = "auto"
    encode_batch_size: int = 64
    num_clusters: int | None = None
    kmeans_iterations: int = DEFAULT_KMEANS_ITERATIONS
    kmeans_sample_size: int = DEFAULT_KMEANS_SAMPLE_SIZE
    eps: float = DEFAULT_EPS
    near_eps: float = DEFAULT_NEAR_EPS
    keep_policy: KeepPolicy = "prototypical"
    second_cluster: bool = True
    near_dedup: NearDedup = "minhash"
    minhash_threshold: float = minhash.DEFAULT_THRESHOLD
    minhash_ngram_size: int = minhash.DEFAULT_NGRAM_SIZE
    minhash_num_perm: int = minhash.DEFAULT_NUM_PERM
    minhash_bands: int | None = None
    minhash_rows: int | None = None
    concepts_file: str | None = None
    concept_threshold: float = 0.3
    max_concepts: int = 3
    max_text_bytes: int = 100_000
    num_shards: int | None = None
    embedding_dtype: EmbeddingDtype = "float32"
    seed: int = 0
    overwrite: bool = False
    write_report: bool = True
    spark_conf: dict[str, str] = field(default_factory=dict)
    storage_options: dict[str, Any] = field(default_factory=dict)
    work_dir: str | None = None
    against: tuple[str, ...] = ()
    recluster: bool = False

    def __post_init__(self) -> None:
        if not self.inputs:
            raise ConfigError("no input given: pass at least one file, directory or glob")
        object.__setattr__(self, "drop_columns", column_names(self.drop_columns))
        against = (self.against,) if isinstance(self.against, str) else self.against
        object.__setattr__(self, "against", tuple(str(given) for given in against))
        check_config(self)

    @classmethod
    def read_column_keys(cls) -> tuple[str, ...]:
        """The keys naming an input column the job reads (``text_column`` ...): every
        ``*_column`` key. Every other input column is kept as it is."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.name.endswith("_column"))

    @property
    def threshold(self) -> float:
        """Cosine at or above which two rows are semantic duplicates."""
        return similarity_threshold(self.eps)

    @property
    def near_threshold(self) -> float:
        """Cosine at or above which a semantic duplicate is labelled ``near``."""
        return similarity_threshold(self.near_eps)

    @classmethod
    def from_call(
        cls, inputs: str | Sequence[str] | CurateConfig, out: str | None, params: dict[str, Any]
    ) -> CurateConfig:
        """The config of a ``curate(inputs, out, **params)`` call (``inputs`` may be a
        complete config already, returned as it is)."""
        if isinstance(inputs, CurateConfig):
            return inputs
        if out is None:
            raise ConfigError("curate() needs an output directory: curate(inputs, out, ...)")
        paths = (inputs,) if isinstance(inputs, str) else tuple(inputs)
        return cls(inputs=paths, out=str(out), **params)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form, as recorded in the manifest."""
        values = dataclasses.asdict(self)
        values.update(inputs=list(self.inputs), against=list(self.against))
        values["storage_options"] = redacted(self.storage_options)  # no keys in a manifest
        return values


def default_num_clusters(num_rows: int) -> int:
    """About sqrt(N) clusters, with at least ~40 rows per cluster for k-means to be meaningful."""
    if num_rows <= 0:
        return 1
    return max(1, min(round(math.sqrt(num_rows)), num_rows // 40, 50_000))


def default_num_shards(num_rows: int) -> int:
    """About 200k rows per Parquet shard, at least one."""
    return max(1, math.ceil(num_rows / 200_000))
