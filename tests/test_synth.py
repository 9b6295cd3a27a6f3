"""Tests of the synthetic corpus and embeddings: the ground truth demos and benchmarks rely on."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from batchcraft.errors import ConfigError
from batchcraft.pipeline.dedup.exact import exact_dedup_form
from batchcraft.synth import (
    DEFAULT_SOURCES,
    SynthCorpus,
    generate_corpus,
    load_corpus,
    synthetic_embeddings,
    write_embeddings_parquet,
)
from batchcraft.synth.vocabulary import TOPICS

NUM_ROWS = 1000


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> SynthCorpus:
    return generate_corpus(tmp_path_factory.mktemp("synth"), num_rows=NUM_ROWS, seed=3)


@pytest.fixture(scope="module")
def rows(corpus: SynthCorpus) -> dict[str, dict]:
    records = {}
    for source, path in corpus.corpus_paths.items():
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            assert record["id"].startswith(f"{source}-")
            assert record["id"] not in records, f"duplicate id {record['id']}"
            records[record["id"]] = record
    return records


def _file_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_same_arguments_give_byte_identical_files_and_another_seed_differs(tmp_path: Path) -> None:
    runs = {
        name: generate_corpus(tmp_path / name, num_rows=300, seed=seed).out_dir
        for name, seed in (("first", 7), ("again", 7), ("other", 8))
    }
    first, again, other = (_file_bytes(root) for root in runs.values())
    assert first == again
    assert first.keys() == other.keys()
    assert first["corpus/web.jsonl"] != other["corpus/web.jsonl"]
    assert first["ground_truth.jsonl"] != other["ground_truth.jsonl"]


def test_sources_have_the_configured_very_different_sizes(
    corpus: SynthCorpus, rows: dict[str, dict]
) -> None:
    assert list(corpus.rows_per_source) == list(DEFAULT_SOURCES)
    for source, share in DEFAULT_SOURCES.items():
        assert abs(corpus.rows_per_source[source] - share * NUM_ROWS) <= 1
        lines = corpus.corpus_paths[source].read_text(encoding="utf-8").splitlines()
        assert len(lines) == corpus.rows_per_source[source]
    assert len(rows) == corpus.num_rows == NUM_ROWS
    assert set(corpus.topic_by_id) == set(rows)


def test_rows_cover_many_topics_with_fields_of_the_right_types(
    corpus: SynthCorpus, rows: dict[str, dict]
) -> None:
    assert len(set(corpus.topic_by_id.values())) >= 8
    for record in rows.values():
        assert list(record) == ["id", "text", "answer", "tags", "topic"]
        assert record["topic"] == corpus.topic_by_id[record["id"]], "the label a trainer uses"
        assert record["text"].strip() and record["answer"].strip()
        assert 1 <= len(record["tags"]) <= 4


def test_concepts_are_long_tailed_and_mentioned_by_the_text(
    corpus: SynthCorpus, rows: dict[str, dict]
) -> None:
    assert 30 <= len(corpus.concepts) <= 60
    assert corpus.concepts_path.read_text().splitlines() == list(corpus.concepts)
    counts = Counter(tag for record in rows.values() for tag in record["tags"])
    assert set(counts) <= set(corpus.concepts)
    frequencies = np.array([counts[concept] for concept in corpus.concepts])  # by rank
    assert frequencies.max() > 15 * max(frequencies.min(), 1)
    by_frequency = np.sort(frequencies)[::-1]
    assert by_frequency[:5].sum() > 1.5 * by_frequency[-25:].sum()
    rank_of_frequency = np.argsort(np.argsort(-frequencies))
    rank_correlation = np.corrcoef(np.arange(len(frequencies)), rank_of_frequency)[0, 1]
    assert rank_correlation > 0.6, "concepts.txt lists concepts from most to least frequent"
    near = corpus.duplicates_of_kind("near")  # a typo may hit a concept name
    for row_id, record in rows.items():
        if row_id not in near:
            text = exact_dedup_form(record["text"])
            assert all(tag in text for tag in record["tags"]), record


def test_duplicates_copy_distinct_base_rows_that_exist(
    corpus: SynthCorpus, rows: dict[str, dict]
) -> None:
    chain_middles = {middle for _, middle, _ in corpus.chains}
    originals = [original for _, original in corpus.duplicates.values()]
    assert len(set(originals)) == len(originals), "each duplicate copies a different row"
    for duplicate, (_kind, original) in corpus.duplicates.items():
        assert duplicate in rows and original in rows
        if duplicate in {last for _, _, last in corpus.chains}:
            assert original in chain_middles
        else:
            assert original not in corpus.duplicates, f"{duplicate} copies a duplicate"
        assert rows[duplicate]["tags"] == rows[original]["tags"]
        assert corpus.topic_by_id[duplicate] == corpus.topic_by_id[original]


def test_duplicate_kinds_have_the_configured_shares_and_chains(corpus: SynthCorpus) -> None:
    for kind in ("exact", "near", "semantic"):
        count = len(corpus.duplicates_of_kind(kind))
        expected = 0.05 * NUM_ROWS + (2 * len(corpus.chains) if kind == "near" else 0)
        assert count == expected, kind
    assert len(corpus.chains) == 5
    for first, middle, last in corpus.chains:
        assert corpus.duplicates[middle] == ("near", first)
        assert corpus.duplicates[last] == ("near", middle)
        assert first not in corpus.duplicates


def test_exact_duplicates_normalise_to_their_original_and_others_do_not(
    corpus: SynthCorpus, rows: dict[str, dict]
) -> None:
    variants = set()
    for duplicate, (kind, original) in corpus.duplicates.items():
        same = exact_dedup_form(rows[duplicate]["text"]) == exact_dedup_form(rows[original]["text"])
        assert same == (kind == "exact"), (kind, rows[duplicate]["text"])
        if kind == "exact":
            assert rows[duplicate]["answer"] == rows[original]["answer"]
            variants.add(rows[duplicate]["text"] == rows[original]["text"])
    assert variants == {True, False}, "some exact copies differ in whitespace or case"


def test_mismatched_pairs_take_the_answer_of_another_topic(
    corpus: SynthCorpus, rows: dict[str, dict]
) -> None:
    assert len(corpus.mismatched_pairs) == round(0.10 * NUM_ROWS)
    records = [json.loads(line) for line in corpus.ground_truth_path.read_text().splitlines()]
    donors = {r["id"]: r["answer_from"] for r in records if r["kind"] == "mismatched_pair"}
    assert set(donors) == set(corpus.mismatched_pairs)
    for row_id, donor in donors.items():
        assert corpus.topic_by_id[row_id] != corpus.topic_by_id[donor]
        assert row_id not in corpus.duplicates
    for row_id, record in rows.items():
        answer_topic = corpus.topic_by_id[donors.get(row_id, row_id)]
        advice = TOPICS[[topic.name for topic in TOPICS].index(answer_topic)].answers
        assert any(sentence in record["answer"] for sentence in advice), record


def _reject_reason(line: bytes) -> str | None:
    """A minimal validating reader, as the pipeline's is specified."""
    try:
        decoded = line.decode("utf-8")
    except UnicodeDecodeError:
        return "invalid_utf8"
    try:
        record = json.loads(decoded)
    except json.JSONDecodeError:
        return "malformed_record"
    if not isinstance(record, dict):
        return "malformed_record"
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        return "missing_text"
    return "text_too_long" if len(text.encode()) > 100_000 else None


def test_bad_rows_fail_validation_for_their_recorded_reason(corpus: SynthCorpus) -> None:
    assert corpus.bad_path is not None
    lines = corpus.bad_path.read_bytes().split(b"\n")[:-1]
    records = [json.loads(line) for line in corpus.ground_truth_path.read_text().splitlines()]
    bad = [record for record in records if record["kind"] == "bad"]
    assert len(bad) == len(lines) == len(corpus.bad_rows)
    for record in bad:
        assert _reject_reason(lines[record["line"] - 1]) == record["reason"], record
    reasons = Counter(corpus.bad_rows.values())
    assert set(reasons) == {"missing_text", "invalid_utf8", "text_too_long", "malformed_record"}
    assert min(reasons.values()) >= 2


def test_without_bad_rows_no_bad_file_is_left(tmp_path: Path) -> None:
    generate_corpus(tmp_path, num_rows=100, bad_rows=True)
    corpus = generate_corpus(tmp_path, num_rows=100, bad_rows=False)
    assert corpus.bad_path is None and not corpus.bad_rows
    assert load_corpus(tmp_path) == corpus


@pytest.mark.parametrize(
    "options",
    [
        {"near_fraction": 1.5},
        {"exact_fraction": 0.3, "semantic_fraction": 0.3},
        {"sources": {"a": 0.5}},
    ],
)
def test_impossible_options_are_rejected(tmp_path: Path, options: dict) -> None:
    with pytest.raises(ConfigError):
        generate_corpus(tmp_path, num_rows=100, **options)


def test_synthetic_embeddings_are_unit_norm_with_planted_pairs_at_their_cosine() -> None:
    data = synthetic_embeddings(5000, dim=64, num_topics=8, duplicate_fraction=0.1, seed=1)
    vectors = data.embeddings
    assert vectors.dtype == np.float32 and vectors.shape == (5000, 64)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    originals, duplicates = data.duplicate_pairs.T
    assert len(originals) == 500 and len(set(originals) | set(duplicates)) == 1000
    measured = np.einsum("ij,ij->i", vectors[originals], vectors[duplicates])
    np.testing.assert_allclose(measured, data.duplicate_cosines, atol=1e-5)
    assert data.duplicate_cosines.min() >= 0.95 - 1e-5 and data.duplicate_cosines.max() <= 0.995
    assert (data.topics[originals] == data.topics[duplicates]).all()
    planted = set(originals) | set(duplicates)
    others = np.array([index for index in range(5000) if index not in planted])[:1000]
    similarity = vectors[others] @ vectors[others].T
    np.fill_diagonal(similarity, 0)
    assert similarity.max() < 0.9, "unplanted rows are not near duplicates of each other"
    assert len(set(data.ids)) == 5000
    again = synthetic_embeddings(5000, dim=64, num_topics=8, duplicate_fraction=0.1, seed=1)
    assert np.array_equal(again.embeddings, vectors)


def test_embeddings_round_trip_through_parquet_files(tmp_path: Path) -> None:
    data = synthetic_embeddings(1000, dim=16, seed=2)
    paths = write_embeddings_parquet(data, tmp_path, num_files=3, row_group_rows=128)
    table = pq.read_table(paths)
    assert len(paths) == 3 and table.column_names == ["id", "text", "embedding"]
    assert str(table.schema.field("embedding").type) == "fixed_size_list<element: float>[16]"
    assert table.column("id").to_pylist() == data.ids
    stored = np.stack(table.column("embedding").to_numpy(zero_copy_only=False))
    np.testing.assert_array_equal(stored, data.embeddings)


def test_news_articles_are_news_length_and_deterministic(tmp_path: Path) -> None:
    from batchcraft.synth.news import news_articles, write_news_corpus

    articles = news_articles(300, seed=2)
    lengths = [len(text.split()) for text in articles]
    assert min(lengths) >= 40 and max(lengths) <= 120
    assert max(lengths) - min(lengths) > 60, "lengths spread over the range"
    assert articles == news_articles(300, seed=2)
    paths = write_news_corpus(tmp_path, 2_000, seed=2, docs_per_file=1_500)
    records = [json.loads(line) for path in paths for line in path.read_text().splitlines()]
    assert len(paths) == 2 and len({record["id"] for record in records}) == 2_000
    copies = 2_000 - len({record["text"] for record in records})
    assert 20 <= copies <= 100, "about 2.5% exact copies (half of the 5% duplicates)"
