"""The columns a trainer needs, through Spark with the real bundled model on the synthetic
corpus: its topic kept as the label, its tags under their own name and type, and each
pair's reference loss (JEST's reference model from the curation embeddings)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from pipeline_helpers import Curated

pytestmark = [pytest.mark.spark, pytest.mark.model]


def test_input_columns_label_and_reference_scores_are_written(curated: Curated) -> None:
    rows = curated.rows()
    assert rows.schema.field("label").type == pa.string(), "the topic, kept as the label"
    assert rows.schema.field("tags").type == pa.list_(pa.field("element", pa.string()))
    topics = curated.corpus.topic_by_id
    by_id = {
        r["id"]: r
        for r in rows.select(["id", "label", "tags", "ref_loss", "dup_of", "dup_kind"]).to_pylist()
    }
    assert all(row["label"] == topics[row_id] for row_id, row in by_id.items())
    assert all(row["tags"] for row in by_id.values()), "removed duplicates keep theirs too"
    losses = rows.column("ref_loss")
    assert losses.type == pa.float32() and losses.null_count == 0
    for row in by_id.values():  # an exact duplicate shares its text and pair, and their score
        if row["dup_kind"] == "exact":
            assert row["ref_loss"] == by_id[row["dup_of"]]["ref_loss"]
    mismatched = set(curated.corpus.mismatched_pairs)
    wrong = np.array([r["ref_loss"] for i, r in by_id.items() if i in mismatched])
    right = np.array([r["ref_loss"] for i, r in by_id.items() if i not in mismatched])
    assert len(wrong) >= 30
    assert wrong.mean() > right.mean() + 2.0, "a pair that does not belong together scores high"
    assert (wrong > np.median(right)).mean() >= 0.95
    recorded = curated.manifest["columns"]
    assert recorded["label"] == {"column": "topic", "type": "string"}
    assert recorded["extra"] == [{"name": "tags", "type": "list<item: string>"}]
    scores = recorded["ref_loss"]
    assert (scores["from"], scores["logit_scale"], scores["logit_bias"]) == ("pairs", 10.0, -10.0)
    assert scores["negatives"] == curated.config.reference_negatives == 255
