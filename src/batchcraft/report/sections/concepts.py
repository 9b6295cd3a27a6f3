"""The concept section: concept frequencies (all rows and kept rows) and concepts per row."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batchcraft.dataset import schema
from batchcraft.report.charts.bars import HALF_WIDTH, Series, bar_chart, column_chart
from batchcraft.report.charts.continuous import Line, line_chart
from batchcraft.report.html import Html, figure, grid, section
from batchcraft.report.inputs import ReportInputs

TOP_CONCEPTS_SHOWN = 25


class ConceptStats:
    """Accumulates concept frequencies and the distribution of concepts per row."""

    columns: tuple[str, ...] = (schema.CONCEPTS, schema.KEEP)

    def __init__(self) -> None:
        self.frequency: Counter[str] = Counter()
        self.kept_frequency: Counter[str] = Counter()
        self.per_row = np.zeros(1, dtype=np.int64)
        self.kept_per_row = np.zeros(1, dtype=np.int64)

    def update(self, batch: pa.RecordBatch, shard: int) -> None:
        """Fold one batch's concept lists into the counters."""
        concepts = batch[schema.CONCEPTS]
        keep = pc.fill_null(batch[schema.KEEP], False)
        kept_concepts = concepts.filter(keep)
        _count_values(self.frequency, concepts)
        _count_values(self.kept_frequency, kept_concepts)
        self.per_row = _add_lengths(self.per_row, concepts)
        self.kept_per_row = _add_lengths(self.kept_per_row, kept_concepts)


class ConceptsSection:
    """Which concepts the kept rows carry, how often, and how many per row."""

    name = "concepts"
    title = "Concepts"

    def accumulator(self, inputs: ReportInputs) -> ConceptStats:
        """Concept counters over all rows and kept rows."""
        return ConceptStats()

    def to_json(
        self, stats: ConceptStats, inputs: ReportInputs, report: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Frequencies over kept rows (shares of the funnel's kept rows); all rows for reference."""
        return concepts_json(stats, report["funnel"]["total"]["kept"])

    def warnings(self, data: dict[str, Any], inputs: ReportInputs) -> list[str]:
        """Concepts are optional annotations: none missing is a problem."""
        return []

    def to_html(self, data: dict[str, Any]) -> Html:
        """Top concepts (log scale), rank-frequency tail, concepts per row."""
        return concepts_html(data)


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


def concepts_json(stats: ConceptStats, num_kept: int) -> dict[str, Any]:
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


def concepts_html(concepts: dict[str, Any]) -> Html:
    """Concept section: top concepts (log scale), rank-frequency tail, concepts per row."""
    name, title = ConceptsSection.name, ConceptsSection.title
    if not concepts["num_distinct"]:
        return section(name, title, "No kept row carries a concept annotation.")
    top = concepts["top"]
    bars = bar_chart(
        [t["concept"] for t in top],
        [Series("rows", [t["rows"] for t in top])],
        title="Most frequent concepts",
        width=HALF_WIDTH,
        log=True,
        annotate=True,
        value_label="kept rows (log scale)",
    )
    lead = (
        f"{concepts['num_distinct']:,} distinct concepts over kept rows ({concepts['singletons']:,} "
        f"seen once); {concepts['mean_per_row']:.2f} per row on average; "
        f"{concepts['rows_without_concepts']:,} rows have none."
    )
    return section(
        name,
        title,
        lead,
        grid(
            figure(bars, f"Top {len(top)} concepts."),
            figure(
                _rank_frequency(concepts["rank_frequency"]),
                "A straight line on log-log axes means a power-law long tail.",
            ),
        ),
        figure(
            _per_row_chart(concepts["per_row_kept"]), "How many concepts each kept row carries."
        ),
    )


def _rank_frequency(ranks: list[int]) -> str:
    return line_chart(
        [Line("concepts", list(range(1, len(ranks) + 1)), ranks)],
        log_x=True,
        log_y=True,
        title="Concept rank versus frequency",
        width=HALF_WIDTH,
        x_label="rank (log)",
        y_label="kept rows (log)",
    )


def _per_row_chart(per_row: list[int]) -> str:
    return column_chart(
        [str(n) for n in range(len(per_row))],
        [Series("rows", per_row)],
        title="Concepts per row",
        x_label="concepts on a row",
        y_label="kept rows",
        height=240,
    )
