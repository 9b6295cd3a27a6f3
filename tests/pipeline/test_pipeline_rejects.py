"""Rejects name the input file each record came from, whatever the input's format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytestmark = [pytest.mark.spark, pytest.mark.model]


def test_each_reject_names_its_own_file_in_a_mixed_directory(spark: Any, tmp_path: Path) -> None:
    from batchcraft.pipeline import curate

    # The .txt files form one source (the directory) but are not next to each other in
    # the input order: the other formats sort between them.
    corpus = tmp_path / "docs"
    corpus.mkdir()
    (corpus / "a.txt").write_text("The first text file.", encoding="utf-8")
    first_line = b'{"text": "a JSON line"}\n'
    (corpus / "b.jsonl").write_bytes(first_line + b'{"text": ""}\n')
    (corpus / "c.txt").write_text("The second text file.", encoding="utf-8")
    (corpus / "d.txt").write_bytes(b"\xff not UTF-8")
    (corpus / "e.csv").write_text('text\n"a CSV row"\n""\n', encoding="utf-8")
    pq.write_table(pa.table({"text": ["a Parquet row", None]}), corpus / "f.parquet")
    (corpus / "g.txt").write_text("   \n", encoding="utf-8")

    curate(str(corpus), str(tmp_path / "out"), spark=spark, write_report=False)

    rejects = pq.read_table(tmp_path / "out" / "rejects").to_pylist()
    # `record` of a .txt file is its position among the source's .txt files.
    assert [(r["file"], r["record"], r["reason"]) for r in rejects] == [
        (str(corpus / "b.jsonl"), len(first_line), "missing_text"),
        (str(corpus / "d.txt"), 2, "invalid_utf8"),
        (str(corpus / "e.csv"), 2, "missing_text"),
        (str(corpus / "f.parquet"), 1, "missing_text"),
        (str(corpus / "g.txt"), 3, "missing_text"),
    ]
