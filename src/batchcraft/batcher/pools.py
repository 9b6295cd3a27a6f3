"""Build selector `Pool`s from dataset rows plus the trainer's feedback table.

Numeric and vector columns are converted to numpy once, on first use (a
vector column of a memory-mapped dataset is a view of the file), and gathered
by position for every pool; only the columns a selector uses are built.
String columns (ids, sources, labels) are gathered from Arrow for each pool
instead: converted whole they would be millions of Python strings per job. A
pool of every row in dataset order (an epoch plan's) shares the converted
columns, made read-only, instead of copying them. Concepts are encoded once
per dataset (`EncodedConcepts`), so a pool gathers integer codes, not lists.

The converted columns belong to the dataset, not to a job: every job of a dataset
shares them (a new job's first selection used to convert them again, 130 ms for the
concepts of 40,000 rows before they were encoded in Arrow).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from batchcraft.batcher.served_dataset import CuratedDataset
from batchcraft.dataset.fields import FEEDBACK_FIELDS, POOL_FIELD_COLUMNS
from batchcraft.dataset.schema import CLUSTER
from batchcraft.errors import ConfigError
from batchcraft.selectors import BaseSelector, MissingColumnsError, Pool
from batchcraft.selectors.encoded_concepts import EncodedConcepts
from batchcraft.selectors.pool import column_to_field

PER_POOL_FIELDS = frozenset({"ids", "sources", "labels"})
"""Pool fields gathered from Arrow per pool, never converted (and cached) whole."""


def selector_fields(selector: BaseSelector) -> frozenset[str]:
    """Pool fields a selector reads (required or optional), always with ``ids``."""
    return selector.required_columns | selector.optional_columns | {"ids"}


def uses_feedback(selector: BaseSelector) -> bool:
    """Whether the selector's choices can depend on trainer feedback."""
    return bool(selector_fields(selector) & FEEDBACK_FIELDS)


class PoolBuilder:
    """Gathers dataset columns and feedback into Pools, by dataset position."""

    def __init__(self, dataset: CuratedDataset) -> None:
        self.dataset = dataset

    def dataset_fields(self, fields: frozenset[str]) -> frozenset[str]:
        """Which of ``fields`` the dataset has (what `build` gathers from it)."""
        return frozenset(
            field
            for field, column in POOL_FIELD_COLUMNS.items()
            if field in fields and column in self.dataset.column_names
        )

    def curated(self, field: str) -> np.ndarray | None:
        """Pool field ``field`` of every dataset row (shared, read-only), or None when the
        dataset lacks its column."""
        column = POOL_FIELD_COLUMNS.get(field)
        if column is None or column not in self.dataset.column_names:
            return None
        values = self._column(field, column)
        return values if isinstance(values, np.ndarray) else None

    def clusters(self) -> np.ndarray | None:
        """The dataset's ``cluster`` of every row (int64), or None without a complete column."""
        if CLUSTER not in self.dataset.column_names:
            return None
        column = self.dataset.table.column(CLUSTER)
        if column.null_count:
            return None
        return np.asarray(column.to_numpy(), dtype=np.int64)

    def build(
        self, positions: np.ndarray, fields: frozenset[str], feedback: Mapping[str, Any]
    ) -> Pool:
        """The Pool of rows at ``positions`` with the dataset ``fields`` that exist and the
        ``feedback`` fields of those rows (`FeedbackTable.pool_fields`)."""
        columns: dict[str, Any] = {}
        every_row = _is_every_row(positions, self.dataset.num_rows)
        for field in self.dataset_fields(fields):
            column = POOL_FIELD_COLUMNS[field]
            if field in PER_POOL_FIELDS:
                values = self.dataset.table.column(column)
                if not every_row:
                    values = values.take(pa.array(positions, type=pa.int64()))
                columns[field] = column_to_field(values, field)
                continue
            values = self._column(field, column)
            columns[field] = values if every_row else values[positions]
        columns.update(feedback)
        return Pool(**columns)

    def _column(self, field: str, column: str) -> Any:
        """Pool field ``field`` of every dataset row, converted once per dataset (every
        job of the dataset shares it) and read-only."""

        def convert() -> Any:
            values = column_to_field(self.dataset.table.column(column), field)
            encoded = isinstance(values, EncodedConcepts)
            for array in (values.starts, values.codes) if encoded else (values,):
                array.flags.writeable = False  # shared by jobs and every-row pools
            return values

        return self.dataset.derived(f"pool field {field}", convert)


def _is_every_row(positions: np.ndarray, num_rows: int) -> bool:
    """Whether ``positions`` is ``0, 1, ..., num_rows - 1``."""
    return len(positions) == num_rows and bool((np.asarray(positions) == np.arange(num_rows)).all())


def check_dataset_columns(selector: BaseSelector, dataset: CuratedDataset) -> None:
    """Refuse a selector the dataset can never satisfy, whatever feedback arrives: the
    uniform fallback is for feedback not reported yet, never for a column the data lacks."""
    needed = {
        POOL_FIELD_COLUMNS.get(name, name) for name in selector.required_columns - FEEDBACK_FIELDS
    }
    missing = sorted(needed - set(dataset.column_names))
    if not missing:
        has = {f for f, column in POOL_FIELD_COLUMNS.items() if column in dataset.column_names}
        try:
            selector.check_columns(frozenset(has) | FEEDBACK_FIELDS)
        except MissingColumnsError as exc:
            missing = [POOL_FIELD_COLUMNS.get(name, name) for name in exc.missing]
    if missing:
        raise ConfigError(
            f"selector {selector.name!r} needs dataset columns {missing}, which dataset "
            f"{dataset.name!r} lacks; it has {dataset.column_names}"
        )
