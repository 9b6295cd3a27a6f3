"""MinHash band keys in Spark, and the band keys of a dataset's kept rows kept with it.

``curate NEW --against PREV`` compares the new rows with PREV's kept rows in MinHash near
dedup, and their band keys are all it needs of PREV to find candidate pairs. Computing
them again shingles and hashes every kept text of PREV in every incremental run: work that
grows with PREV, not with the new rows (most of the MinHash stage's time with 10 % new).
So a run that does MinHash near dedup writes the keys of the rows it keeps beside its rows,
as ``minhash/part-NNNNN.parquet`` (`KEYS_SCHEMA`), and records them in the manifest's
``minhash_keys`` with what they depend on (`key_settings`: shingle size, bands, rows,
seed and `KEYS_VERSION` of the shingling and hashing code). A later run whose settings
match reads them, each file by an executor, from wherever the dataset lives; a dataset
without them (curated before they existed, or with ``near_dedup = "none"``) or with other
settings has its kept texts hashed as before. PREV's texts are still read: the candidate
pairs a PREV row is part of are verified on both texts' shingles.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pyspark import TaskContext
from pyspark.sql import DataFrame, SparkSession

from batchcraft.dataset import layout
from batchcraft.pipeline.minhash.settings import MinhashSettings
from batchcraft.pipeline.minhash.shingles import shingle_sets
from batchcraft.pipeline.minhash.signatures import MinHasher, band_keys
from batchcraft.pipeline.write.files import write_parquet
from batchcraft.storage import Location, StorageOptions, list_files, resolve

KEYS_VERSION = 1
"""Of the shingling and hashing code: a change to either must bump it, so keys made by
the old code are not matched against keys made by the new."""
KEYS_DDL = "band int, key long, id string"
KEYS_SCHEMA = pa.schema([("band", pa.int32()), ("key", pa.int64()), ("id", pa.string())])
MANIFEST_KEY = "minhash_keys"
"""The manifest's record of the kept keys: `key_settings`, ``path``, ``files``, ``num_rows``."""


@dataclass(frozen=True)
class Previous:
    """An earlier dataset's kept rows, as MinHash compares new rows with them.

    Attributes:
        texts: ``id``, ``text`` (and ``pair_text``): to verify the pairs they are part of.
        keys: Their band keys (`kept_keys.band_rows`): read with the dataset, or computed.
    """

    texts: DataFrame
    keys: DataFrame


def band_rows(texts: DataFrame, settings: MinhashSettings) -> DataFrame:
    """One row (``band``, ``key``, ``id``) per band of every row of ``texts`` (``id``,
    ``text`` and, when present, ``pair_text``, whose shingles count too) that has words."""
    lsh, hasher = settings.lsh, MinHasher(settings.lsh.num_perm, settings.seed)
    ngram_size = settings.ngram_size

    def rows(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            pairs = batch.column("pair_text") if "pair_text" in batch.schema.names else None
            sets = shingle_sets(batch.column("text"), ngram_size, pairs)
            filled = np.flatnonzero(sets.sizes > 0)  # a text without words has no bucket
            keys = band_keys(hasher.signatures(sets), lsh)[filled]
            yield pa.RecordBatch.from_arrays(
                [
                    pa.array(np.tile(np.arange(lsh.bands, dtype=np.int32), len(filled))),
                    pa.array(keys.reshape(-1)),
                    batch.column("id").take(pa.array(np.repeat(filled, lsh.bands))),
                ],
                schema=KEYS_SCHEMA,
            )

    return texts.mapInArrow(rows, KEYS_DDL)


def key_settings(settings: MinhashSettings) -> dict[str, int]:
    """What a band key depends on (the threshold does not: it judges verified pairs)."""
    lsh = settings.lsh
    return {
        "ngram_size": settings.ngram_size,
        "num_perm": lsh.num_perm,
        "bands": lsh.bands,
        "rows": lsh.rows,
        "seed": settings.seed,
        "version": KEYS_VERSION,
    }


def write_kept_keys(
    keys: DataFrame,
    kept_ids: DataFrame,
    staging: Location,
    settings: MinhashSettings,
    num_files: int,
) -> dict[str, Any]:
    """Write the band ``keys`` of the rows of ``kept_ids`` (``id``) under
    ``staging/minhash/``, at most ``num_files`` files, each by the task holding its rows;
    the manifest's record of them."""
    directory = staging.join(layout.MINHASH_KEYS_DIR)
    directory.filesystem.create_dir(directory.path, recursive=True)

    def write(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        tables = [b.select(KEYS_SCHEMA.names).cast(KEYS_SCHEMA) for b in batches if b.num_rows]
        if not tables:
            return
        context = TaskContext.get()
        assert context is not None, "runs inside a Spark task"
        name = f"part-{context.partitionId():05d}.parquet"
        count = write_parquet(tables, directory.join(name), KEYS_SCHEMA)
        yield pa.RecordBatch.from_pydict({"name": [name], "rows": [count]})

    kept = (  # in files by a hash of the id, sorted: the same files from the same rows
        keys.join(kept_ids, "id", "left_semi")
        .repartition(max(1, num_files), "id")
        .sortWithinPartitions("id", "band")
    )
    written = kept.mapInArrow(write, "name string, rows long").collect()
    return {
        **key_settings(settings),
        "path": layout.MINHASH_KEYS_DIR,
        "files": sorted(row["name"] for row in written),
        "num_rows": sum(row["rows"] for row in written),
    }


def has_kept_keys(manifest: dict[str, Any], settings: MinhashSettings) -> bool:
    """Whether a dataset's manifest records kept keys made with ``settings``'s."""
    record = manifest.get(MANIFEST_KEY)
    if not isinstance(record, dict) or not isinstance(record.get("files"), list):
        return False
    return all(record.get(name) == value for name, value in key_settings(settings).items())


def missing_kept_keys(
    url: str, manifest: dict[str, Any], storage_options: StorageOptions | None = None
) -> list[str]:
    """The kept-key files a dataset's manifest names that its ``minhash/`` does not hold
    (a damaged or partly copied dataset: its keys are computed instead of read)."""
    directory = resolve(url, storage_options).join(manifest[MANIFEST_KEY]["path"])
    present = {found.name for found in list_files(directory)}
    return [name for name in manifest[MANIFEST_KEY]["files"] if name not in present]


def read_kept_keys(
    spark: SparkSession,
    datasets: list[tuple[str, dict[str, Any]]],
    storage_options: StorageOptions | None = None,
) -> DataFrame:
    """The kept keys of ``datasets`` (each its URL and manifest, `has_kept_keys`), every
    file read by an executor from its store (nothing passes through the driver)."""
    files = [
        resolve(url, storage_options).join(manifest[MANIFEST_KEY]["path"], name).url
        for url, manifest in datasets
        for name in manifest[MANIFEST_KEY]["files"]
    ]
    if not files:
        return spark.createDataFrame([], KEYS_DDL)
    plan = spark.createDataFrame([(url,) for url in files], "url string").repartition(len(files))

    def read(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for url in batch.column("url").to_pylist():
                location = resolve(url, storage_options)
                with location.filesystem.open_input_file(location.path) as handle:
                    yield from pq.ParquetFile(handle).iter_batches()

    return plan.mapInArrow(read, KEYS_DDL)
