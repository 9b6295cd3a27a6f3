"""A curated dataset keeps the MinHash band keys of its kept rows, and ``curate --against``
reads them instead of hashing the predecessor's texts again, with the same decisions."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from incremental_corpus import SETTINGS, corpora

from batchcraft.dataset import layout
from batchcraft.pipeline.minhash.kept_keys import MANIFEST_KEY, key_settings
from batchcraft.pipeline.minhash.settings import MinhashSettings
from batchcraft.pipeline.minhash.shingles import shingle_sets
from batchcraft.pipeline.minhash.signatures import MinHasher, band_keys

pytestmark = pytest.mark.spark


@dataclass(frozen=True)
class Runs:
    a: Path  # curated A, with its kept keys
    without_keys: Path  # A as a dataset curated before keys were kept
    read: dict[str, Any]  # B against A: the manifest
    computed: dict[str, Any]  # B against A without keys: the manifest
    root: Path


def _without_keys(dataset: Path, copy: Path) -> Path:
    shutil.copytree(dataset, copy)
    shutil.rmtree(copy / layout.MINHASH_KEYS_DIR)
    manifest = json.loads((copy / layout.MANIFEST).read_text())
    del manifest[MANIFEST_KEY]
    (copy / layout.MANIFEST).write_text(json.dumps(manifest))
    return copy


@pytest.fixture(scope="module")
def runs(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    from batchcraft.pipeline import curate

    root = tmp_path_factory.mktemp("kept-keys")
    a_corpus, b_corpus = corpora(root / "corpora")
    curate(str(a_corpus), str(root / "A"), spark=spark, **SETTINGS)
    old = _without_keys(root / "A", root / "A-old")
    manifests = {
        name: curate(str(b_corpus), str(root / name), spark=spark, against=[str(prev)], **SETTINGS)
        for name, prev in (("read", root / "A"), ("computed", old))
    }
    return Runs(root / "A", old, manifests["read"], manifests["computed"], root)


def test_a_dataset_keeps_the_band_keys_of_its_kept_rows(runs: Runs) -> None:
    manifest = json.loads((runs.a / layout.MANIFEST).read_text())
    record = manifest[MANIFEST_KEY]
    settings = MinhashSettings()
    assert {k: record[k] for k in key_settings(settings)} == key_settings(settings)
    stored = pq.read_table(runs.a / record["path"]).to_pylist()
    assert len(stored) == record["num_rows"]
    rows = pq.read_table(runs.a / "data", columns=["id", "text", "keep"]).to_pylist()
    kept = [row for row in rows if row["keep"]]
    assert len(kept) < len(rows), "A holds duplicates, whose keys are not kept"
    lsh = settings.lsh
    sets = shingle_sets(pa.array([row["text"] for row in kept]), settings.ngram_size)
    expected = band_keys(MinHasher(lsh.num_perm, settings.seed).signatures(sets), lsh)
    want = {
        (row["id"], band, int(key))
        for row, keys in zip(kept, expected, strict=True)
        for band, key in enumerate(keys)
    }
    assert {(row["id"], row["band"], row["key"]) for row in stored} == want


def _decisions(dataset: Path) -> dict[str, tuple[Any, ...]]:
    table = pq.read_table(dataset / "data", columns=["id", "keep", "dup_of", "dup_kind"])
    return {row["id"]: (row["keep"], row["dup_of"], row["dup_kind"]) for row in table.to_pylist()}


def test_a_run_against_a_reads_its_keys_and_decides_as_when_they_are_computed(
    runs: Runs,
) -> None:
    assert runs.read["incremental"]["minhash_keys_read_from"] == [str(runs.a)]
    assert runs.computed["incremental"]["minhash_keys_read_from"] == []
    read, computed = _decisions(runs.root / "read"), _decisions(runs.root / "computed")
    assert read == computed
    against_a = [kind for _, dup_of, kind in read.values() if dup_of and dup_of.startswith("a")]
    assert against_a.count("minhash") >= 25  # the corpus plants 30 MinHash copies of A's rows
    removed = runs.read["incremental"]["removed_against_previous"]
    assert removed == runs.computed["incremental"]["removed_against_previous"]
    assert removed["minhash"] == against_a.count("minhash")


def test_keys_made_with_other_settings_are_not_read(spark: Any, runs: Runs) -> None:
    from batchcraft.pipeline import curate

    b_corpus = runs.root / "corpora" / "b"
    manifest = curate(
        str(b_corpus),
        str(runs.root / "ngram-3"),
        spark=spark,
        against=[str(runs.a)],
        minhash_ngram_size=3,
        **SETTINGS,
    )
    assert manifest["incremental"]["minhash_keys_read_from"] == []
    assert manifest["incremental"]["removed_against_previous"]["minhash"] >= 25
    assert manifest[MANIFEST_KEY]["ngram_size"] == 3


def test_a_run_without_minhash_keeps_no_keys(spark: Any, runs: Runs) -> None:
    from batchcraft.pipeline import curate

    out = runs.root / "no-minhash"
    a_corpus = runs.root / "corpora" / "a"
    manifest = curate(str(a_corpus), str(out), spark=spark, near_dedup="none", **SETTINGS)
    assert MANIFEST_KEY not in manifest
    assert not (out / layout.MINHASH_KEYS_DIR).exists()


def test_a_predecessor_missing_a_key_file_is_hashed_instead_with_a_warning(
    spark: Any, runs: Runs, caplog: pytest.LogCaptureFixture
) -> None:
    from batchcraft.pipeline import curate

    damaged = runs.root / "A-damaged"
    shutil.copytree(runs.a, damaged)
    (first, *_) = sorted((damaged / layout.MINHASH_KEYS_DIR).iterdir())
    first.unlink()  # a partly copied dataset
    with caplog.at_level("WARNING", logger="batchcraft.pipeline"):
        manifest = curate(
            str(runs.root / "corpora" / "b"),
            str(runs.root / "damaged-delta"),
            spark=spark,
            against=[str(damaged)],
            **SETTINGS,
        )
    assert manifest["incremental"]["minhash_keys_read_from"] == []
    assert any(first.name in record.getMessage() for record in caplog.records)
    assert _decisions(runs.root / "damaged-delta") == _decisions(runs.root / "read")
