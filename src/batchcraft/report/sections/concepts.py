"""Concept frequencies (all rows and kept rows) and concepts per row."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

TOP_CONCEPTS_SHOWN = 25


class ConceptStats:
    """Accumulates concept frequencies and the distribution of concepts per row."""

    columns: tuple[str, ...] = ("concepts", "keep")

    def __init__(self) -> None:
        self.frequency: Counter[str] = Counter()
        self.kept_frequency: Counter[str] = Counter()
        self.per_row = np.zeros(1, dtype=np.int64)
        self.kept_per_row = np.zeros(1, dtype=np.int64)

    def update(self, batch: pa.RecordBatch, shard: int) -> None:
        """Fold one batch's concept lists into the counters."""
        concepts = batch["concepts"]
        keep = pc.fill_null(batch["keep"], False)
        kept_concepts = concepts.filter(keep)
        _count_values(self.frequency, concepts)
        _count_values(self.kept_frequency, kept_concepts)
        self.per_row = _add_lengths(self.per_row, concepts)
        self.kept_per_row = _add_lengths(self.kept_per_row, kept_concepts)


def _count_values(counter: Counter[str], lists: pa.Array) -> None:
    values = pc.list_flatten(lists)
    if len(values) == 0:
        return
    for item in pc.value_counts(values).to_pylist():
        counter[str(item["values"])] += item["counts"]


def _add_lengths(histogram: np.ndarray, lists: pa.Array) -> np.ndarray:
    lengths = pc.fill_null(pc.list_value_length(lists), 0).to_numpy().astype(np.int64)
    counts = np.bincount(lengths, minlength=len(histogram))
    if len(histogram) < len(counts):
        histogram = np.pad(histogram, (0, len(counts) - len(histogram)))
    return histogram + counts


def _ranked(counter: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counter.items(), key=lambda item: (-item[1], item[0]))


def concept_section(stats: ConceptStats, num_kept: int) -> dict[str, Any]:
    """The report's concept section (frequencies over kept rows; all rows for reference).

    Args:
        stats: The accumulated concept statistics.
        num_kept: Number of kept rows (to turn counts into shares).
    """
    ranked = _ranked(stats.kept_frequency)
    total_mentions = sum(count for _, count in ranked)
    per_row = stats.kept_per_row
    rows = int(per_row.sum())
    mean = float((np.arange(len(per_row)) * per_row).sum() / rows) if rows else 0.0
    return {
        "num_distinct": len(ranked),
        "num_distinct_all_rows": len(stats.frequency),
        "mentions": total_mentions,
        "rows_without_concepts": int(per_row[0]) if len(per_row) else 0,
        "mean_per_row": round(mean, 3),
        "top": [
            {"concept": name, "rows": count, "percent_of_kept": _percent(count, num_kept)}
            for name, count in ranked[:TOP_CONCEPTS_SHOWN]
        ],
        "rank_frequency": [count for _, count in ranked],
        "frequency_kept": dict(ranked),
        "frequency_all": dict(_ranked(stats.frequency)),
        "per_row_kept": per_row.tolist(),
        "per_row_all": stats.per_row.tolist(),
        "singletons": sum(1 for _, count in ranked if count == 1),
    }


def _percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0
