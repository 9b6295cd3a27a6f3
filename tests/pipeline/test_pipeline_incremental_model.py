"""Incremental curation with the real model: a new week's copy, a reworded sentence and
a new sentence, curated against last week's dataset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

pytestmark = [pytest.mark.spark, pytest.mark.model]

TOPICS = [
    "The river flooded the old town after three days of heavy rain",
    "A new bakery opened on the corner and sells rye bread every morning",
    "The chess champion defended her title with a bold queen sacrifice",
    "Scientists found water ice in a crater near the lunar south pole",
    "The city council voted to extend the tram line to the airport",
    "Ticket prices for the summer music festival rose by twenty percent",
    "A rare orchid bloomed in the botanical garden for the first time in decades",
    "The football club signed a young striker from the second division",
]


def _write(path: Path, rows: list[dict[str, str]]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_last_weeks_copies_and_rewordings_are_removed_with_the_real_model(
    spark: Any, tmp_path: Path
) -> None:
    from batchcraft.pipeline import curate

    settings: dict[str, Any] = {"id_column": "id", "num_clusters": 2, "write_report": False}
    week1 = _write(
        tmp_path / "week1.jsonl", [{"id": f"w1-{i}", "text": t} for i, t in enumerate(TOPICS)]
    )
    curate(week1, str(tmp_path / "A"), spark=spark, **settings)
    week2 = [
        {"id": "w2-copy", "text": TOPICS[0].lower()},
        {
            "id": "w2-reworded",
            "text": TOPICS[3].replace("Scientists found", "Researchers discovered"),
        },
        {"id": "w2-new", "text": "The museum returned a stolen painting to its original owners"},
    ]
    manifest = curate(
        _write(tmp_path / "week2.jsonl", week2),
        str(tmp_path / "delta"),
        spark=spark,
        against=[str(tmp_path / "A")],
        **settings,
    )
    rows = {r["id"]: r for r in pq.read_table(tmp_path / "delta" / "data").to_pylist()}
    assert (rows["w2-copy"]["dup_kind"], rows["w2-copy"]["dup_of"]) == ("exact", "w1-0")
    assert rows["w2-reworded"]["dup_kind"] in ("near", "semantic")
    assert rows["w2-reworded"]["dup_of"] == "w1-3"
    assert rows["w2-new"]["keep"] and manifest["num_kept"] == 1
    assert len(rows["w2-copy"]["embedding"]) == manifest["embedding"]["dim"] == 384
