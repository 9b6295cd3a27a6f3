"""Parsing and validation: every bad record gets its reason, valid records are normalised."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batchcraft.pipeline.read.inputs import discover, plan_chunks
from batchcraft.pipeline.read.parse import ColumnMapping, parse_chunk


def parse_all(path: Path, mapping: ColumnMapping | None = None) -> list[dict]:
    rows = []
    for chunk in plan_chunks(discover([str(path)])):
        for batch in parse_chunk(chunk, mapping or ColumnMapping(id="id")):
            rows.extend(batch.to_pylist())
    return rows


def write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b'{"id": "1", "text": ""}', "missing_text"),
        (b'{"id": "1", "text": "   \\n  "}', "missing_text"),
        (b'{"id": "1", "text": null}', "missing_text"),
        (b'{"id": "1"}', "missing_text"),
        (b'{"id": "1", "text": "caf\xe9 au lait"}', "invalid_utf8"),
        (b'{"id": "1", "text": "lone surrogate \\udcff"}', "invalid_utf8"),
        (b'{"id": "1", "text": "' + b"x" * 101 + b'"}', "text_too_long"),
        (b'{"id": "1", "text": "unterminated', "malformed_record"),
        (b"[1, 2]", "malformed_record"),
        (b'{"id": "1", "text": 42}', "malformed_record"),
        (b'{"text": "no id here"}', "missing_id"),
    ],
)
def test_bad_jsonl_record_is_rejected_with_its_reason(
    tmp_path: Path, line: bytes, reason: str
) -> None:
    path = write_lines(tmp_path / "c.jsonl", [b'{"id": "ok", "text": "a good row"}', line])
    rows = parse_all(path, ColumnMapping(id="id", max_text_bytes=100))
    assert [r["reason"] for r in rows] == [None, reason]
    assert rows[1]["detail"]
    assert rows[1]["raw"], "the rejected record keeps a preview of what was read"
    assert rows[0]["raw"] is None, "valid rows carry no preview"


def test_missing_pair_is_rejected(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "c.jsonl",
        [b'{"id": "1", "text": "q", "answer": "a"}', b'{"id": "2", "text": "q2"}'],
    )
    rows = parse_all(path, ColumnMapping(id="id", pair="answer"))
    assert [(r["pair_text"], r["reason"]) for r in rows] == [("a", None), (None, "missing_pair")]


def test_valid_text_is_normalised_and_keyed(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "c.jsonl",
        [
            json.dumps({"id": "1", "text": "  Ｆｕｌｌ width\t\tand  spaces \r\n"}).encode(),
            json.dumps({"id": "2", "text": "full WIDTH and spaces"}).encode(),
        ],
    )
    first, second = parse_all(path)
    assert first["text"] == "Full width and spaces"
    assert first["dedup_key"] == second["dedup_key"], "case and spacing do not make a row unique"


def test_jsonl_byte_range_chunks_cover_every_line_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import batchcraft.pipeline.read.inputs as inputs

    monkeypatch.setattr(inputs, "JSONL_CHUNK_BYTES", 37)  # cuts through the middle of lines
    lines = [
        json.dumps({"id": str(i), "text": f"row number {i} " + "x" * (i % 7)}).encode()
        for i in range(50)
    ]
    rows = parse_all(write_lines(tmp_path / "c.jsonl", lines))
    assert len(plan_chunks(discover([str(tmp_path / "c.jsonl")]))) > 10
    assert sorted(int(r["id"]) for r in rows) == list(range(50))


def test_csv_wrong_field_count_and_bad_bytes(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes(b'id,text\n1,"hello, world"\n2,too,many\n3,caf\xe9\n4,fine\n')
    rows = parse_all(path)
    assert [(r["id"], r["reason"]) for r in rows] == [
        ("1", None),
        (None, "malformed_record"),
        (None, "invalid_utf8"),
        ("4", None),
    ]
    assert rows[0]["text"] == "hello, world"


def test_parquet_rows_with_invalid_utf8_and_nulls(tmp_path: Path) -> None:
    path = tmp_path / "c.parquet"
    table = pa.table(
        {"id": ["1", "2", "3"], "body": pa.array([b"fine", b"\xff\xfe", None], pa.binary())}
    )
    pq.write_table(table, path)
    rows = parse_all(path, ColumnMapping(text="body", id="id"))
    assert [r["reason"] for r in rows] == [None, "invalid_utf8", "missing_text"]


def test_text_files_are_one_row_each(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("First document.\n\nSecond paragraph.", encoding="utf-8")
    (folder / "b.txt").write_bytes(b"\xff broken")
    rows = []
    for chunk in plan_chunks(discover([str(folder)])):
        for batch in parse_chunk(chunk, ColumnMapping()):
            rows.extend(batch.to_pylist())
    assert [r["reason"] for r in rows] == [None, "invalid_utf8"]
    assert rows[0]["text"] == "First document.\n\nSecond paragraph."
    assert rows[0]["source"] == "docs"


def test_derived_ids_are_stable_and_distinct_for_repeated_text(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "c.jsonl", [b'{"text": "same"}', b'{"text": "same"}'])
    first = [r["id"] for r in parse_all(path, ColumnMapping())]
    assert first == [r["id"] for r in parse_all(path, ColumnMapping())]
    assert len(set(first)) == 2


def test_precomputed_vectors_stay_aligned_with_their_rows(tmp_path: Path) -> None:
    path = tmp_path / "c.parquet"
    vectors = pa.array(
        [[1.0, 0.0], None, [0.0, 1.0], [0.5, 0.5], [], [0.5, None]], pa.list_(pa.float32())
    )
    ids, texts = ["a", "b", "c", "d", "e", "f"], ["x", "y", "", "w", "v", "u"]
    pq.write_table(pa.table({"id": ids, "text": texts, "vec": vectors}), path)
    rows = parse_all(path, ColumnMapping(id="id", embedding="vec"))
    assert [(r["id"], r["reason"]) for r in rows] == [
        ("a", None),
        ("b", "malformed_record"),
        ("c", "missing_text"),
        ("d", None),
        ("e", "malformed_record"),  # an empty vector
        ("f", "malformed_record"),  # a null value inside the vector
    ]
    given = [r["given_embedding"] for r in rows]
    assert given == [[1.0, 0.0], None, None, [0.5, 0.5], None, None]


@pytest.mark.parametrize("vector", ["[0.5, null]", '[0.5, "x"]', "[0.5, [1]]", "[true, 0.5]"])
def test_jsonl_vector_with_a_non_number_is_rejected(tmp_path: Path, vector: str) -> None:
    lines = [
        b'{"id": "a", "text": "x", "vec": [0.5, 1]}',
        f'{{"id": "b", "text": "y", "vec": {vector}}}'.encode(),
    ]
    rows = parse_all(
        write_lines(tmp_path / "c.jsonl", lines), ColumnMapping(id="id", embedding="vec")
    )
    assert [(r["reason"], r["given_embedding"]) for r in rows] == [
        (None, [0.5, 1.0]),
        ("malformed_record", None),
    ]
    assert "position" in rows[1]["detail"]


@pytest.mark.parametrize(
    ("field", "detail"),
    [
        ("", "is missing"),
        (', "vec": null', "is missing"),
        (', "vec": []', "is empty"),
        (', "vec": "0.5, 1"', "holds a str, not a list of numbers"),
    ],
)
def test_jsonl_vector_that_is_missing_empty_or_not_a_list_says_which(
    tmp_path: Path, field: str, detail: str
) -> None:
    line = f'{{"id": "a", "text": "x"{field}}}'.encode()
    (row,) = parse_all(write_lines(tmp_path / "c.jsonl", [line]), ColumnMapping(embedding="vec"))
    assert (row["reason"], row["detail"]) == (
        "malformed_record",
        f"embedding column 'vec' {detail}",
    )


NAN, INF = float("nan"), float("inf")
# (vector, what the reject's detail must say); every one of them would turn into NaN or a
# zero vector when scaled to unit norm.
UNUSABLE_VECTORS = {
    "nan": ([0.5, NAN, 0.5], "holds nan at position 1"),
    "inf": ([INF, 0.5, 0.5], "holds inf at position 0"),
    "minus_inf": ([0.5, 0.5, -INF], "holds -inf at position 2"),
    "zeros": ([0.0, -0.0, 0.0], "is all zeros"),
}


@pytest.mark.parametrize(
    ("list_type", "value_type"),
    [(pa.list_, pa.float32()), (pa.list_, pa.float64()), (pa.large_list, pa.float32())],
)
def test_parquet_vectors_that_cannot_be_normalised_are_rejected_per_record(
    tmp_path: Path, list_type: Any, value_type: pa.DataType
) -> None:
    cases = {**UNUSABLE_VECTORS, "ok": ([0.5, 0.0, 0.5], None)}
    if value_type == pa.float64():  # finite here, inf once stored as float32
        cases["huge"] = ([0.5, 1e39, 0.5], "holds 1e+39 at position 1 (beyond the float32 range)")
    table = pa.table(
        {
            "id": list(cases),
            "text": [f"text of {name}" for name in cases],
            "vec": pa.array([vector for vector, _ in cases.values()], list_type(value_type)),
        }
    )
    pq.write_table(table, tmp_path / "c.parquet")
    rows = {
        r["id"]: r
        for r in parse_all(tmp_path / "c.parquet", ColumnMapping(id="id", embedding="vec"))
    }
    for name, (_, detail) in cases.items():
        if detail is None:
            assert rows[name]["reason"] is None
            assert rows[name]["given_embedding"] == [0.5, 0.0, 0.5]
            continue
        assert rows[name]["reason"] == "malformed_record", name
        assert rows[name]["detail"].startswith(f"embedding column 'vec' {detail}"), rows[name]
        assert rows[name]["given_embedding"] is None
        assert f"text of {name}" in rows[name]["raw"]


def test_jsonl_vectors_that_cannot_be_normalised_are_rejected_per_record(tmp_path: Path) -> None:
    cases = {
        **UNUSABLE_VECTORS,
        "huge": ([0.5, 1e39, 0.5], "holds 1e+39 at position 1 (beyond the float32 range)"),
        "huge_int": ([1, 10**400, 1], "holds an integer of 401 digits at position 1"),
        "ok": ([0.5, 0, 0.5], None),
    }
    lines = [  # json.dumps writes NaN and Infinity, as many JSON producers do
        json.dumps({"id": name, "text": f"text of {name}", "vec": vector}).encode()
        for name, (vector, _) in cases.items()
    ]
    rows = parse_all(
        write_lines(tmp_path / "c.jsonl", lines), ColumnMapping(id="id", embedding="vec")
    )
    for row, (name, (_, detail)) in zip(rows, cases.items(), strict=True):
        if detail is None:
            assert (row["reason"], row["given_embedding"]) == (None, [0.5, 0.0, 0.5])
            continue
        assert row["reason"] == "malformed_record", name
        assert row["detail"].startswith(f"embedding column 'vec' {detail}"), row
        assert row["given_embedding"] is None
        assert f"text of {name}" in row["raw"]


# (CSV cell, what the reject's detail must say after "embedding column 'vec' ").
BAD_CSV_VECTORS = {
    "blank": ("  ", "is empty"),
    "no_brackets": ("0.5, 0.5", "is not a JSON array of numbers like [0.1, -0.2] (Extra data"),
    "semicolons": ("[0.5; 0.5]", "is not a JSON array of numbers"),
    "number": ("0.5", "holds a JSON number, not a JSON array of numbers"),
    "object": ('{"x": 0.5}', "holds a JSON object, not a JSON array of numbers"),
    "null": ("null", "holds a JSON null, not a JSON array of numbers"),
    "empty_array": ("[]", "is empty"),
    "text_value": ('[0.5, "x"]', "holds 'x' at position 1, not a number"),
    "null_value": ("[0.5, null]", "holds None at position 1, not a number"),
    "nan": ("[0.5, NaN, 0.5]", "holds nan at position 1"),
    "huge": ("[0.5, 1e39]", "holds 1e+39 at position 1 (beyond the float32 range)"),
    "zeros": ("[0, 0.0, -0]", "is all zeros"),
}


def test_csv_vectors_are_json_arrays_checked_like_jsonl_vectors(tmp_path: Path) -> None:
    good = {"ok": ("[0.5, 0, -0.25]", [0.5, 0.0, -0.25]), "padded": (" [1, 2] ", [1.0, 2.0])}
    cells = {name: cell for name, (cell, _) in {**good, **BAD_CSV_VECTORS}.items()}
    path = tmp_path / "c.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "vec"])
        writer.writerows([name, f"text of {name}", cell] for name, cell in cells.items())
    rows = {r["id"]: r for r in parse_all(path, ColumnMapping(id="id", embedding="vec"))}
    assert len(rows) == len(cells)
    for name, (_, vector) in good.items():
        assert (rows[name]["reason"], rows[name]["given_embedding"]) == (None, vector)
    for name, (_, detail) in BAD_CSV_VECTORS.items():
        assert rows[name]["reason"] == "malformed_record", rows[name]
        assert rows[name]["detail"].startswith(f"embedding column 'vec' {detail}"), rows[name]
        assert rows[name]["given_embedding"] is None
        assert f"text of {name}" in rows[name]["raw"]
