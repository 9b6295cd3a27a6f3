"""Hostile records through every reader (property-based): each record comes out as exactly one
row, kept or rejected with a known reason, and nothing raises."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from batchcraft.pipeline.read.inputs import discover, plan_chunks
from batchcraft.pipeline.read.parse import REJECT_REASONS, ColumnMapping, parse_chunk

FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
MAPPING = ColumnMapping(id="id", ref_loss="loss")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=12,
)
records = st.fixed_dictionaries(
    {},
    optional={"id": json_values, "text": json_values, "loss": json_values, "extra": json_values},
)
hostile_lines = st.one_of(
    records.map(lambda record: json.dumps(record).encode()),
    st.binary(max_size=60),
    st.integers(1, 3000).map(
        lambda depth: b'{"id": "d", "text": ' + b"[" * depth + b"]" * depth + b"}"
    ),
    st.just(b'{"id": "n", "text": "x", "loss": NaN}'),
    st.just(b'{"id": "big", "text": "x", "loss": ' + b"9" * 400 + b"}"),
    st.just(b'{"id": "s", "text": "\\ud800"}'),
)


def parse_rows(path: Path) -> list[dict]:
    rows = []
    for chunk in plan_chunks(discover([str(path)])):
        for batch in parse_chunk(chunk, MAPPING):
            rows.extend(batch.to_pylist())
    return rows


def assert_kept_or_rejected(rows: list[dict]) -> None:
    for row in rows:
        if row["reason"] is None:
            assert row["text"] and row["text"].strip() and row["id"]
        else:
            assert row["reason"] in REJECT_REASONS and row["detail"]


@FUZZ
@given(lines=st.lists(hostile_lines, min_size=1, max_size=25))
@example(lines=[b'{"id": "deep", "text": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"])
def test_every_jsonl_line_is_kept_or_rejected(lines: list[bytes]) -> None:
    lines = [line.replace(b"\n", b" ") for line in lines]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "corpus.jsonl"
        path.write_bytes(b"\n".join(lines) + b"\n")
        rows = parse_rows(path)
    assert len(rows) == sum(1 for line in lines if line.strip())
    assert_kept_or_rejected(rows)


@FUZZ
@given(
    cells=st.lists(
        st.tuples(st.binary(max_size=12), st.binary(max_size=30)), min_size=1, max_size=20
    )
)
def test_every_csv_record_is_kept_or_rejected(cells: list[tuple[bytes, bytes]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "corpus.csv"
        path.write_bytes(b"id,text,loss\n" + b"\n".join(a + b"," + b + b",1.5" for a, b in cells))
        rows = parse_rows(path)
    assert rows
    assert_kept_or_rejected(rows)


@FUZZ
@given(
    texts=st.lists(st.none() | st.text(max_size=30), min_size=1, max_size=20),
    losses=st.lists(
        st.none() | st.floats(allow_nan=True, allow_infinity=True), min_size=20, max_size=20
    ),
)
def test_every_parquet_row_is_kept_or_rejected(
    texts: list[str | None], losses: list[float | None]
) -> None:
    table = pa.table(
        {
            "id": [f"r{i}" for i in range(len(texts))],
            "text": pa.array(texts, pa.string()),
            "loss": pa.array(losses[: len(texts)], pa.float64()),
        }
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "corpus.parquet"
        pq.write_table(table, path)
        rows = parse_rows(path)
    assert len(rows) == len(texts)
    assert_kept_or_rejected(rows)


@FUZZ
@given(contents=st.lists(st.binary(max_size=80), min_size=1, max_size=6))
def test_every_text_file_is_kept_or_rejected(contents: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        corpus = Path(folder) / "docs"
        corpus.mkdir()
        for index, content in enumerate(contents):
            (corpus / f"{index}.txt").write_bytes(content)
        rows = []
        for chunk in plan_chunks(discover([str(corpus)])):
            for batch in parse_chunk(chunk, ColumnMapping()):
                rows.extend(batch.to_pylist())
    assert len(rows) == len(contents)
    assert_kept_or_rejected(rows)
