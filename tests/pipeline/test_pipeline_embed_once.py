"""The curation job embeds each text once: no stage makes Spark recompute the embeddings."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from pipeline_helpers import encoded_texts, recording_encoder

pytestmark = pytest.mark.spark

VOCABULARY = ["science", "sports", "music"]


def test_zero_shot_concepts_embed_no_text_twice(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from batchcraft.pipeline import curate
    from batchcraft.pipeline.concepts import stage as concepts_stage
    from batchcraft.pipeline.embedding import stage as embedding_stage

    records = [{"text": f"question {i}", "answer": f"answer {i}"} for i in range(120)]
    records += [records[3], records[40]]  # exact duplicates take their original's vectors
    records += [{"text": "", "answer": "rejected, never embedded"}]
    (tmp_path / "c.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (tmp_path / "concepts.txt").write_text("\n".join(VOCABULARY) + "\n")
    log_dir = tmp_path / "encoded"
    log_dir.mkdir()
    fake = recording_encoder(log_dir)
    monkeypatch.setattr(embedding_stage, "cached_encoder", fake)  # rows, on the executors
    monkeypatch.setattr(concepts_stage, "cached_encoder", fake)  # the vocabulary, on the driver

    curate(
        str(tmp_path / "c.jsonl"),
        str(tmp_path / "out"),
        spark=spark,
        pair_column="answer",
        concepts_file=str(tmp_path / "concepts.txt"),
        num_clusters=4,
        write_report=False,
    )

    encoded = Counter(encoded_texts(log_dir))
    twice = {text: count for text, count in encoded.items() if count > 1}
    assert not twice, f"texts embedded more than once: {sorted(twice.items())[:5]}"
    expected = [f"question {i}" for i in range(120)] + [f"answer {i}" for i in range(120)]
    assert sorted(encoded) == sorted(expected + VOCABULARY)
