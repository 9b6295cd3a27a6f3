"""MinHash near dedup through Spark: planted pairs merged at the S-curve's rate and never
below the threshold, the chain case, huge template buckets, connected components against
union-find, and the job: removed rows never embedded, every row accounted for."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from minhash_helpers import jaccard, record_jaccard, union_find
from pipeline_helpers import Curated, encoded_texts, recording_encoder

from batchcraft.pipeline.minhash.settings import MinhashSettings
from batchcraft.synth.near_duplicates import planted_pair, random_text

pytestmark = pytest.mark.spark

LEVELS = (0.9, 0.8, 0.7, 0.5)
PAIRS_PER_LEVEL = 60


@pytest.fixture(scope="module")
def planted(spark: Any) -> dict[str, Any]:
    """Pairs planted at each Jaccard level, unrelated texts beside them, and the
    decisions of `minhash_dedup` (smallest_id keeps the pair's first text)."""
    from batchcraft.pipeline import minhash_dedup
    from batchcraft.pipeline.minhash.kept_keys import band_rows
    from batchcraft.pipeline.minhash.stage import candidate_pairs

    rng = np.random.default_rng(5)
    texts, level_of = {}, {}
    for level in LEVELS:
        for number in range(PAIRS_PER_LEVEL):
            left, right = planted_pair(rng, level, number)
            key = f"j{int(level * 100)}-{number:03d}"
            texts[f"{key}-a"], texts[f"{key}-b"] = left, right
            level_of[f"{key}-b"] = level
    for number in range(40):
        texts[f"other-{number:03d}"] = random_text(rng, 80)
    frame = spark.createDataFrame(sorted(texts.items()), "id string, text string")
    result = minhash_dedup(frame, keep_policy="smallest_id").collect()
    candidates = candidate_pairs(band_rows(frame, MinhashSettings())).collect()
    return {
        "texts": texts,
        "level_of": level_of,
        "rows": {r["id"]: r for r in result},
        "candidates": {(r["u"], r["v"]) for r in candidates},
    }


def test_planted_pairs_become_candidates_at_the_rate_of_the_s_curve(
    planted: dict[str, Any],
) -> None:
    """Each planted pair shares a bucket with probability 1 - (1 - J^r)^b, independently of
    the others: the count at each level is binomial, checked within four standard deviations."""
    lsh, level_of = MinhashSettings().lsh, planted["level_of"]
    found = Counter(level_of[v] for u, v in planted["candidates"] if u == v[:-1] + "a")
    for level in LEVELS:
        expected = PAIRS_PER_LEVEL * float(lsh.detection_probability(level))
        spread = 4 * math.sqrt(expected * (1 - expected / PAIRS_PER_LEVEL)) + 1
        assert abs(found[level] - expected) <= spread, (level, found[level], expected)
    assert found[0.7] > 0 and found[0.5] > 0  # candidates below the threshold to verify


def test_candidates_at_the_threshold_are_merged_and_those_below_never(
    planted: dict[str, Any],
) -> None:
    rows, level_of = planted["rows"], planted["level_of"]
    merged = Counter(level_of[i] for i, row in rows.items() if not row["keep"])
    found = Counter(level_of[v] for u, v in planted["candidates"] if u == v[:-1] + "a")
    assert merged[0.9] == found[0.9] and merged[0.8] == found[0.8]
    assert merged[0.7] == merged[0.5] == 0  # candidates, but below the threshold


def test_no_pair_below_the_threshold_is_merged(planted: dict[str, Any]) -> None:
    rows, texts = planted["rows"], planted["texts"]
    removed = [row for row in rows.values() if not row["keep"]]
    assert len(removed) >= PAIRS_PER_LEVEL
    for row in removed:
        assert row["dup_kind"] == "minhash" and rows[row["dup_of"]]["keep"]
        true_jaccard = jaccard(texts[row["id"]], texts[row["dup_of"]])
        assert row["dup_jaccard"] == pytest.approx(true_jaccard, abs=1e-12)
        assert true_jaccard >= 0.8
        assert row["id"].endswith("-b") and row["dup_of"] == row["id"][:-1] + "a"
    kept = [row for row in rows.values() if row["keep"]]
    assert all(row["dup_of"] is None and row["dup_jaccard"] is None for row in kept)


def test_a_rerun_decides_the_same(spark: Any, planted: dict[str, Any]) -> None:
    from batchcraft.pipeline import minhash_dedup

    frame = spark.createDataFrame(sorted(planted["texts"].items()), "id string, text string")
    again = minhash_dedup(frame.repartition(5), keep_policy="smallest_id").collect()
    assert {r["id"]: r for r in again} == planted["rows"]


def chain_texts() -> dict[str, str]:
    """A≈B and B≈C (one word apart: J = 55/65), A≉C (two words apart: J = 50/70)."""
    words = [f"c{i}" for i in range(64)]
    b = words.copy()
    b[20] = "bee"
    c = b.copy()
    c[45] = "sea"
    return {"a": " ".join(words), "b": " ".join(b), "c": " ".join(c)}


@pytest.mark.parametrize(
    ("keep_policy", "expected"),
    [
        ("smallest_id", {"a": None, "b": "a", "c": None}),  # B goes for resembling A
        ("prototypical", {"a": "b", "b": None, "c": "b"}),  # B resembles both: it stays
        ("hardest", {"a": None, "b": "a", "c": None}),  # A and C tie, A is the smaller id
    ],
)
def test_chain_case_keeps_what_the_rule_says(
    spark: Any, keep_policy: str, expected: dict[str, str | None]
) -> None:
    from batchcraft.pipeline import minhash_dedup

    texts = chain_texts()
    assert jaccard(texts["a"], texts["b"]) >= 0.8 > jaccard(texts["a"], texts["c"])
    frame = spark.createDataFrame(sorted(texts.items()), "id string, text string")
    rows = minhash_dedup(frame, keep_policy=keep_policy).collect()
    assert {r["id"]: r["dup_of"] for r in rows} == expected
    # The pair lists it cached are released: the caller's session is left as it was.
    assert spark._jsparkSession.sharedState().cacheManager().isEmpty()


def test_a_template_filling_one_bucket_is_compared_linearly(spark: Any) -> None:
    from batchcraft.pipeline.minhash.candidates import BUCKET_CENTERS
    from batchcraft.pipeline.minhash.stage import cache_into, find_minhash_duplicates

    template = [f"t{i}" for i in range(80)]
    pages = {}
    for number in range(300):  # one word differs: J = 71/81 between any two
        page = template.copy()
        page[40] = f"name{number}"
        pages[f"p{number:04d}"] = " ".join(page)
    frame = spark.createDataFrame(sorted(pages.items()), "id string, text string")
    cached: list[Any] = []
    found = find_minhash_duplicates(frame, MinhashSettings(), "smallest_id", cache_into(cached))
    for pairs in cached:
        pairs.unpersist()
    # Each band's bucket holds most pages; each page meets that bucket's first pages only.
    assert found.candidate_pairs <= 2 * BUCKET_CENTERS * len(pages)  # all pairs: 44,850
    assert found.groups == 1 and found.largest_group == len(pages)
    assert found.decisions.count() >= 0.99 * len(pages)  # the template collapses


def test_connected_components_equal_union_find_without_collecting(
    spark: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pyspark.sql.classic.dataframe import DataFrame

    from batchcraft.pipeline.graph import connected_components

    rng = np.random.default_rng(3)
    names = [f"n{i:04d}" for i in rng.permutation(1200)]  # labels unrelated to the order
    edges = [(names[i], names[i + 1]) for i in range(500)]  # a chain of 501 nodes
    edges += [(names[600], names[i]) for i in range(601, 700)]  # a star
    edges += [(names[i], names[i + 1]) for i in range(700, 750)] + [(names[750], names[700])]
    pairs = rng.integers(800, 1200, size=(250, 2))  # random small components
    edges += [(names[a], names[b]) for a, b in pairs if a != b]
    frame = spark.createDataFrame(edges, "u string, v string")
    for method in ("collect", "toArrow", "toPandas", "toLocalIterator", "take", "head"):
        monkeypatch.setattr(DataFrame, method, _refuse, raising=False)
    components = connected_components(frame)
    monkeypatch.undo()
    labels = {row["id"]: row["component"] for row in components.labels.collect()}
    assert labels == union_find(edges)
    assert components.rounds <= 20  # label propagation would need 500 on the chain


def _refuse(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("connected components must not bring the graph to the driver")


def test_minhash_duplicates_are_never_embedded_and_every_row_is_accounted_for(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from batchcraft.pipeline import curate
    from batchcraft.pipeline.embedding import stage as embedding_stage

    rng = np.random.default_rng(8)
    records = []
    for number in range(40):  # smallest_id keeps each original (a..) and removes its copy
        original, copy = planted_pair(rng, 0.9, number)
        records += [
            {"id": f"a{number:02d}", "text": original},
            {"id": f"b{number:02d}", "text": copy},
        ]
    records.append({"id": "x00", "text": records[0]["text"]})  # an exact copy of a kept row
    records.append({"id": "x01", "text": records[1]["text"]})  # ... and of a MinHash duplicate
    (tmp_path / "c.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    log_dir = tmp_path / "encoded"
    log_dir.mkdir()
    monkeypatch.setattr(embedding_stage, "cached_encoder", recording_encoder(log_dir))
    manifest = curate(
        str(tmp_path / "c.jsonl"),
        str(tmp_path / "out"),
        spark=spark,
        id_column="id",
        keep_policy="smallest_id",
        num_clusters=2,
        write_report=False,
    )
    rows = {r["id"]: r for r in pq.read_table(tmp_path / "out" / "data").to_pylist()}
    minhash = {i for i, r in rows.items() if r["dup_kind"] == "minhash"}
    assert minhash == {f"b{number:02d}" for number in range(40)}
    encoded = Counter(encoded_texts(log_dir))
    assert sorted(encoded) == sorted(rows[f"a{number:02d}"]["text"] for number in range(40))
    for row_id in [*minhash, "x01"]:  # they carry the vectors of the row they duplicate
        source = rows[row_id]["dup_of"] if row_id != "x01" else "a00"
        assert rows[row_id]["embedding"] == rows[source]["embedding"]
    assert rows["x01"]["dup_kind"] == "exact" and rows["x01"]["dup_of"] == "b00"
    total = manifest["counts"]["total"]
    assert total["minhash_duplicates"] == 40 and total["exact_duplicates"] == 2
    assert (
        total["in"]
        == len(records)
        == total["kept"] + 42 + total["near_duplicates"] + total["semantic_duplicates"]
    )
    stages = {stage["stage"]: stage for stage in manifest["counts"]["stages"]}
    assert stages["minhash_dedup"] == {**stages["minhash_dedup"], "in": 80, "duplicates": 40}
    assert manifest["near_dedup"]["verified_pairs"] == 40


def test_the_curated_corpus_has_minhash_duplicates_verified_by_jaccard(curated: Curated) -> None:
    """The shared fixture runs with MinHash on (the default), so the local-cluster and
    rerun tests of test_pipeline_spark compare MinHash decisions too."""
    rows = {r["id"]: r for r in curated.rows().to_pylist()}
    minhash = [r for r in rows.values() if r["dup_kind"] == "minhash"]
    assert minhash, "the synthetic corpus's light edits include pairs at Jaccard >= 0.8"
    truth = curated.corpus.duplicates
    for row in minhash:
        assert row["dup_jaccard"] >= curated.config.minhash_threshold
        kept = rows[row["dup_of"]]
        assert record_jaccard(
            (row["text"], row["pair_text"]), (kept["text"], kept["pair_text"])
        ) == pytest.approx(row["dup_jaccard"], abs=1e-12)
        assert row["embedding"] == rows[row["dup_of"]]["embedding"] and row["max_sim"] is None
        planted_as = truth.get(row["id"]) or truth.get(row["dup_of"])
        assert planted_as is not None and planted_as[0] == "near", row["id"]
    assert curated.manifest["near_dedup"]["method"] == "minhash"
