"""The input's own columns, planned and parsed without Spark: which are kept, under which
Arrow type, what carries them through Spark, and the one-line errors a user can act on."""

from __future__ import annotations

import datetime
import decimal
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batchcraft.errors import ConfigError, InputError
from batchcraft.pipeline.config import CurateConfig
from batchcraft.pipeline.read.column_plan import (
    check_column_names,
    needs_survey,
    observe_inputs,
    plan_columns,
)
from batchcraft.pipeline.read.column_survey import survey_json_chunk, with_surveyed_types
from batchcraft.pipeline.read.column_types import (
    KEPT_COLUMNS,
    carrier_type,
    to_carrier,
    unnest_kept_columns,
)
from batchcraft.pipeline.read.inputs import discover, plan_chunks
from batchcraft.pipeline.read.parse import ColumnMapping, parse_chunk


def config(**params: Any) -> CurateConfig:
    return CurateConfig(inputs=("unused",), out="unused", **{"id_column": "id", **params})


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def planned(directory: Path, **params: Any) -> Any:
    """The plan of the job over every file of ``directory``, JSONL types surveyed."""
    files = discover([str(directory)])
    observed = observe_inputs(files)
    settings = config(**params)
    check_column_names(observed, settings)
    surveyed = [
        (chunk.file_index, found)
        for chunk in plan_chunks(files)
        if chunk.format == "jsonl"
        for found in survey_json_chunk(chunk, frozenset({"id", "text"}))
    ]
    return plan_columns(with_surveyed_types(observed, files, surveyed), settings)


def test_types_promote_across_files_and_keep_input_order(tmp_path: Path) -> None:
    write_jsonl(
        tmp_path / "a.jsonl",
        [
            {"id": "1", "text": "t", "n": 1, "url": None, "tags": [], "meta": {"a": 1}},
            {"id": "2", "text": "t", "n": 2, "url": "u", "tags": ["x"], "meta": {"b": "s"}},
        ],
    )
    pq.write_table(
        pa.table(
            {"id": ["3"], "text": ["t"], "n": pa.array([0.5]), "extra": pa.array([1], pa.int8())}
        ),
        tmp_path / "b.parquet",
    )
    plan = planned(tmp_path)
    kept = {column.name: column.type for column in plan.user_columns}
    assert list(kept) == ["n", "url", "tags", "meta", "extra"]
    assert kept == {
        "n": pa.float64(),  # int64 in a.jsonl, double in b.parquet
        "url": pa.string(),  # null + string
        "tags": pa.list_(pa.string()),  # an empty list has no item type of its own
        "meta": pa.struct([("a", pa.int64()), ("b", pa.string())]),  # fields merged
        "extra": pa.int8(),
    }


def test_types_that_do_not_promote_name_the_column_the_files_and_the_types(
    tmp_path: Path,
) -> None:
    pq.write_table(pa.table({"id": ["1"], "text": ["t"], "n": [1]}), tmp_path / "a.parquet")
    (tmp_path / "b.csv").write_text("id,text,n\n2,t,two\n")
    with pytest.raises(InputError) as error:
        planned(tmp_path)
    message = str(error.value)
    assert "\n" not in message
    assert "column 'n'" in message
    assert f"int64 in {tmp_path / 'a.parquet'}" in message
    assert f"string in {tmp_path / 'b.csv'}" in message
    assert "--drop-columns n" in message
    assert planned(tmp_path, drop_columns="n").user_columns == ()


def test_a_jsonl_key_of_two_types_is_an_error_naming_its_file(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", [{"text": "t", "n": 1}, {"text": "u", "n": "one"}])
    with pytest.raises(InputError, match=r"column 'n' .*int64 in .*a\.jsonl; string in"):
        planned(tmp_path)


def test_a_jsonl_integer_beyond_int64_is_an_error_naming_the_column(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"text": "t", "big": 123456789012345678901234}\n')
    with pytest.raises(InputError, match=r"column 'big' .* beyond the int64 range"):
        planned(tmp_path)


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("cluster", "--drop-columns cluster"),
        ("keep", "--drop-columns keep"),
        ("label", "map it with --label-column label"),
        ("ref_loss", "map it with --ref-loss-column ref_loss"),
        ("embedding", "map it with --embedding-column embedding"),
    ],
)
def test_a_column_named_like_a_contract_column_is_a_one_line_error(
    tmp_path: Path, name: str, hint: str
) -> None:
    write_jsonl(tmp_path / "a.jsonl", [{"id": "1", "text": "t", name: 1}])
    files = discover([str(tmp_path)])
    with pytest.raises(InputError) as error:
        check_column_names(observe_inputs(files), config())
    message = str(error.value)
    assert "\n" not in message and f"input column {name!r}" in message and hint in message
    check_column_names(observe_inputs(files), config(drop_columns=[name]))


def test_dropping_or_mapping_a_column_no_input_has_lists_the_columns_they_have(
    tmp_path: Path,
) -> None:
    write_jsonl(tmp_path / "a.jsonl", [{"id": "1", "text": "t", "url": "u"}])
    observed = observe_inputs(discover([str(tmp_path)]))
    for params, flag in [
        ({"drop_columns": "url,nope"}, "--drop-columns 'nope'"),
        ({"label_column": "nope"}, "--label-column 'nope'"),
        ({"ref_loss_column": "nope"}, "--ref-loss-column 'nope'"),
    ]:
        with pytest.raises(
            InputError, match=rf"^{flag} not found in any input; .*\['id', 'text', 'url'\]$"
        ):
            check_column_names(observed, config(**params))


def test_drop_columns_and_the_reference_loss_settings_are_checked_by_the_config() -> None:
    assert config(drop_columns="a, b").drop_columns == ("a", "b")
    assert config(drop_columns=["a"]).drop_columns == ("a",)
    with pytest.raises(ConfigError, match="drop_columns names 'text', which the job reads"):
        config(drop_columns="text")
    with pytest.raises(ConfigError, match=r"either ref_loss_column .* or reference_scores"):
        config(pair_column="answer", ref_loss_column="loss", reference_scores="pairs")
    with pytest.raises(ConfigError, match="needs a pair_column and no embedding_column"):
        config(reference_scores="pairs")
    with pytest.raises(ConfigError, match="reference_negatives=0 must be >= 1"):
        config(reference_negatives=0)


def test_a_label_keeps_its_type_and_must_not_be_nested(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", [{"id": "1", "text": "t", "y": 3, "topic": "sports"}])
    plan = planned(tmp_path, label_column="y")
    assert plan.label is not None and (plan.label.name, plan.label.type) == ("label", pa.int64())
    assert [column.name for column in plan.user_columns] == ["topic"]
    assert planned(tmp_path, label_column="topic").label.type == pa.string()  # type: ignore[union-attr]
    write_jsonl(tmp_path / "a.jsonl", [{"id": "1", "text": "t", "y": [3]}])
    with pytest.raises(InputError, match="--label-column 'y' holds list<item: int64>"):
        planned(tmp_path, label_column="y")


def test_text_files_have_no_columns_of_their_own(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a document")
    observed = observe_inputs(discover([str(tmp_path)]))
    assert observed == [] and not needs_survey(observed)
    assert plan_columns(observed, config(id_column=None)).carried == ()


CARRIED = [
    (pa.int8(), [1, None]),
    (pa.uint64(), [2**64 - 1, None]),
    (pa.float16(), [1.5, None]),
    (pa.large_string(), ["x", None]),
    (pa.dictionary(pa.int32(), pa.string()), ["a", None]),
    (pa.binary(3), [b"abc", None]),
    (pa.timestamp("ns", tz="UTC"), [datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC), None]),
    (pa.date32(), [datetime.date(2020, 1, 2), None]),
    (pa.time64("us"), [datetime.time(1, 2, 3), None]),
    (pa.duration("ms"), [datetime.timedelta(seconds=2), None]),
    (pa.decimal128(12, 3), [decimal.Decimal("1.250"), None]),
    (pa.list_(pa.float32(), 2), [[1.0, 2.0], None]),
    (pa.map_(pa.string(), pa.uint32()), [[("k", 4)], None]),
    (pa.struct([("at", pa.timestamp("ms")), ("n", pa.uint8())]), [{"at": None, "n": 3}, None]),
    (pa.null(), [None, None]),
]


@pytest.mark.parametrize(("kind", "values"), CARRIED, ids=[str(kind) for kind, _ in CARRIED])
def test_every_carried_type_comes_back_unchanged(kind: pa.DataType, values: list[Any]) -> None:
    from batchcraft.dataset.schema import row_schema, to_contract

    original = pa.array(values, kind)
    carried = to_carrier(original, kind)
    assert carried.type == carrier_type(kind)
    batch = pa.RecordBatch.from_arrays(
        [pa.array(["a", "b"]), pa.StructArray.from_arrays([carried], names=["value"])],
        ["id", KEPT_COLUMNS],
    )
    schema = row_schema(2, user_columns=[pa.field("value", kind)])
    restored = to_contract(unnest_kept_columns(batch), schema).column("value")
    assert restored.type == kind and restored.to_pylist() == original.to_pylist()


def test_parsed_batches_carry_the_kept_columns_of_valid_records_only(tmp_path: Path) -> None:
    write_jsonl(
        tmp_path / "a.jsonl",
        [{"text": "t", "n": 1, "m": {"a": 1}}, {"text": "", "n": 2}, {"text": "u", "n": 3.5}],
    )
    pq.write_table(
        pa.table({"text": ["p", None], "n": pa.array([7, 8], pa.int32()), "b": [b"\xff", b"ok"]}),
        tmp_path / "b.parquet",
    )
    plan = planned(tmp_path)
    mapping = ColumnMapping(kept=plan.carried)
    rows = []
    for chunk in plan_chunks(discover([str(tmp_path)])):
        for batch in parse_chunk(chunk, mapping):
            assert batch.schema.field(KEPT_COLUMNS).type == pa.struct(
                [("n", pa.float64()), ("m", pa.struct([("a", pa.int64())])), ("b", pa.binary())]
            )
            rows.extend(batch.to_pylist())
    assert [(r["reason"], r[KEPT_COLUMNS]) for r in rows] == [
        (None, {"n": 1.0, "m": {"a": 1}, "b": None}),
        ("missing_text", {"n": None, "m": None, "b": None}),
        (None, {"n": 3.5, "m": None, "b": None}),
        (None, {"n": 7.0, "m": None, "b": b"\xff"}),  # bytes that are no UTF-8: not text
        ("missing_text", {"n": 8.0, "m": None, "b": b"ok"}),
    ]


@pytest.mark.parametrize(
    ("value", "stored", "detail"),
    [
        (2.5, 2.5, None),
        (3, 3.0, None),
        (None, None, None),
        ("2.5", None, "holds '2.5', not a number"),
        (True, None, "holds True, not a number"),
        ([1.0], None, "holds [1.0], not a number"),
        (float("nan"), None, "holds nan; a reference loss must be a finite float32 number"),
        (float("inf"), None, "holds inf; a reference loss must be a finite float32 number"),
        (1e39, None, "holds 1e+39; a reference loss must be a finite float32 number"),
    ],
)
def test_a_reference_loss_that_is_not_a_finite_number_rejects_its_record(
    tmp_path: Path, value: Any, stored: float | None, detail: str | None
) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [{"text": "t", "loss": value}])
    (chunk,) = plan_chunks(discover([str(path)]))
    (row,) = next(parse_chunk(chunk, ColumnMapping(ref_loss="loss"))).to_pylist()
    if detail is None:
        assert row["reason"] is None and row["ref_loss"] == stored
    else:
        assert row["reason"] == "bad_ref_loss" and row["ref_loss"] is None
        assert row["detail"] == f"ref_loss column 'loss' {detail}"


def test_a_csv_reference_loss_is_read_as_a_number(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("text,loss\na,2.5\nb,\nc,high\nd,nan\n")
    (chunk,) = plan_chunks(discover([str(tmp_path / "a.csv")]))
    rows = next(parse_chunk(chunk, ColumnMapping(ref_loss="loss"))).to_pylist()
    assert [(r["reason"], r["ref_loss"]) for r in rows] == [
        (None, 2.5),
        (None, None),
        ("bad_ref_loss", None),
        ("bad_ref_loss", None),
    ]
