"""Validation of one decoded record into the fields of a row: pure, no Spark.

A record failing a check raises `Reject` with a reason from ``parse.REJECT_REASONS`` and a
human detail; a valid one comes out with its normalised text, id, concepts and vector.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from typing import Any

from batchcraft.pipeline.dedup.exact import dedup_key
from batchcraft.pipeline.read.column_types import KeptColumn
from batchcraft.pipeline.read.inputs import Chunk
from batchcraft.pipeline.read.normalize import derived_id, normalize_text
from batchcraft.pipeline.read.vector_checks import vector_problem

_FLOAT32_MAX = 3.4028234663852886e38  # numpy.finfo(numpy.float32).max
_JSON_TYPE_NAMES = {
    dict: "object",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


@dataclass(frozen=True)
class ColumnMapping:
    """Which input columns feed which row fields, and the validation limits."""

    text: str = "text"
    id: str | None = None
    pair: str | None = None
    concepts: str | None = None
    embedding: str | None = None
    max_text_bytes: int = 100_000
    ref_loss: str | None = None
    kept: tuple[KeptColumn, ...] = ()
    """The other input columns the dataset keeps (`column_plan.ColumnPlan.carried`)."""


@dataclass(frozen=True)
class CheckedVector:
    """Stands for a Parquet vector in a record: checked (and kept) as an Arrow column."""

    problem: str | None


class Reject(Exception):
    """A record rejected with a ``reason`` (one of ``parse.REJECT_REASONS``) and a ``detail``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def has_surrogates(value: str) -> bool:
    """Whether ``value`` holds lone surrogates: bytes that were not valid UTF-8."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def validate_record(
    record: dict[str, Any], mapping: ColumnMapping, chunk: Chunk, number: int
) -> dict[str, Any]:
    """The row fields of record ``number`` of ``chunk``, or `Reject` naming what is wrong."""
    text = _text_field(record, mapping.text, "missing_text", mapping.max_text_bytes)
    pair = None
    if mapping.pair:
        pair = _text_field(record, mapping.pair, "missing_pair", mapping.max_text_bytes)
    if mapping.id:
        given = record.get(mapping.id)
        if given is None or str(given).strip() == "":
            raise Reject("missing_id", f"id column {mapping.id!r} is missing or empty")
        row_id = str(given)
    else:
        row_id = derived_id(
            os.path.basename(chunk.path) if chunk.format != "txt" else str(record.get("id")),
            number,
            text,
        )
    return {
        "id": row_id,
        "text": text,
        "pair_text": pair,
        "dedup_key": dedup_key(text, pair),
        "given_concepts": _concepts_field(record, mapping.concepts),
        "given_embedding": _embedding_field(record, mapping.embedding, chunk.format == "csv"),
        "ref_loss": _ref_loss_field(record, mapping.ref_loss, chunk.format == "csv"),
    }


def _text_field(record: dict[str, Any], column: str, missing_reason: str, max_bytes: int) -> str:
    value = record.get(column)
    if value is None:
        raise Reject(missing_reason, f"column {column!r} is missing or null")
    if not isinstance(value, str):
        raise Reject(
            "malformed_record", f"column {column!r} holds a {type(value).__name__}, not text"
        )
    if has_surrogates(value):
        raise Reject("invalid_utf8", f"column {column!r} is not valid UTF-8")
    size = len(value.encode("utf-8"))
    if size > max_bytes:
        raise Reject(
            "text_too_long", f"column {column!r} has {size} bytes > max_text_bytes={max_bytes}"
        )
    normalized = normalize_text(value)
    if not normalized:
        raise Reject(missing_reason, f"column {column!r} is empty")
    return normalized


def _concepts_field(record: dict[str, Any], column: str | None) -> list[str] | None:
    if not column:
        return None
    value = record.get(column)
    if value is None:
        return []
    if isinstance(value, str):
        return sorted({part.strip() for part in value.split(",") if part.strip()})
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return sorted({v.strip() for v in value if v.strip()})
    raise Reject(
        "malformed_record", f"concept column {column!r} is neither a list of strings nor text"
    )


def _embedding_field(
    record: dict[str, Any], column: str | None, as_json_text: bool = False
) -> list[float] | None:
    """The record's precomputed vector; ``as_json_text`` for CSV, whose cells are text."""
    if not column:
        return None
    value: Any = record.get(column)
    if as_json_text:
        value = _json_vector(value, column)
    checked = isinstance(value, CheckedVector)  # a Parquet vector, added from Arrow afterwards
    problem = value.problem if checked else vector_problem(value)
    if problem:
        raise Reject("malformed_record", f"embedding column {column!r} {problem}")
    return None if checked else [float(v) for v in value]


def _ref_loss_field(
    record: dict[str, Any], column: str | None, as_text: bool = False
) -> float | None:
    """The record's reference loss: a finite number within the float32 range, or null.

    A CSV cell is text, read as a number (a blank cell is null); in JSONL and Parquet the
    value must be a number already: text, a boolean, NaN or ±inf reject the record.
    """
    if not column:
        return None
    value = record.get(column)
    if as_text and isinstance(value, str):
        if not value.strip():
            return None
        try:
            value = float(value)
        except ValueError:
            raise Reject(
                "bad_ref_loss", f"ref_loss column {column!r} holds {_shown(value)}, not a number"
            ) from None
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Reject(
            "bad_ref_loss", f"ref_loss column {column!r} holds {_shown(value)}, not a number"
        )
    if abs(value) > _FLOAT32_MAX or (isinstance(value, float) and not math.isfinite(value)):
        raise Reject(
            "bad_ref_loss",
            f"ref_loss column {column!r} holds {_shown(value)}; a reference loss must be a "
            "finite float32 number",
        )
    return float(value)


def _shown(value: Any, limit: int = 40) -> str:
    """``repr(value)``, cut to ``limit`` characters for a reject's detail."""
    shown = repr(value)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def _json_vector(cell: str, column: str) -> list[Any]:
    """A CSV cell holding a vector as a JSON array (``"[0.1, -0.2]"``), decoded but not yet
    checked: its values then go through the same checks as a JSONL vector."""
    expected = "a JSON array of numbers like [0.1, -0.2]"
    if not cell.strip():
        raise Reject("malformed_record", f"embedding column {column!r} is empty")
    try:
        value = json.loads(cell)
    except (ValueError, RecursionError) as exc:
        raise Reject(
            "malformed_record", f"embedding column {column!r} is not {expected} ({exc})"
        ) from None
    if not isinstance(value, list):
        kind = _JSON_TYPE_NAMES.get(type(value), type(value).__name__)
        raise Reject(
            "malformed_record", f"embedding column {column!r} holds a JSON {kind}, not {expected}"
        )
    return value
