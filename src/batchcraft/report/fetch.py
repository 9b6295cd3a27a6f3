"""Fetching a few rows by id without reading whole shards."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

MAX_TEXT_CHARS = 600
TEXT_COLUMNS = ("text", "pair_text")


def truncate(text: str | None, limit: int = MAX_TEXT_CHARS) -> str | None:
    """``text`` cut to ``limit`` characters, with an ellipsis when cut."""
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


def fetch_rows(
    files: Sequence[Path], ids: Iterable[str], columns: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Rows whose id is in ``ids``, with ``columns``, keyed by id.

    Reads only the ``id`` column of every row group, and the requested columns of the
    row groups that hold a wanted id, so the cost is bounded by the number of ids
    rather than the dataset's size. Text columns are truncated to MAX_TEXT_CHARS and
    embeddings returned as float64 numpy vectors.

    Args:
        files: The data shards.
        ids: The ids to fetch; missing ids are simply absent from the result.
        columns: Columns to return (besides ``id``); absent columns are skipped.
    """
    wanted = {value for value in ids if value is not None}
    found: dict[str, dict[str, Any]] = {}
    for path in files:
        if len(found) == len(wanted):
            break
        parquet = pq.ParquetFile(path)
        present = [name for name in columns if name in parquet.schema_arrow.names]
        for group in range(parquet.num_row_groups):
            remaining = pa.array(sorted(wanted - found.keys()), type=pa.string())
            if len(remaining) == 0:
                break
            id_column = parquet.read_row_group(group, columns=["id"])["id"]
            mask = pc.is_in(id_column, value_set=remaining)
            if not pc.any(mask).as_py():
                continue
            rows = parquet.read_row_group(group, columns=["id", *present]).filter(mask)
            for row in rows.to_pylist():
                found[row["id"]] = _clean(row)
    return found


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    for name, value in row.items():
        if name in TEXT_COLUMNS:
            cleaned[name] = truncate(value)
        elif name.endswith("embedding") and value is not None:
            cleaned[name] = np.asarray(value, dtype=np.float64)
        else:
            cleaned[name] = value
    return cleaned
