"""The funnel section's rejected rows: ``rejects/`` counted by source and reason, a few
examples per reason (JSON), and their chart and table (HTML)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from batchcraft.report.charts.bars import OUTCOME_COLORS, Series, bar_chart
from batchcraft.report.charts.svg import esc
from batchcraft.report.fetch import truncate
from batchcraft.report.html import Html, figure, heading, paragraph, table
from batchcraft.report.sampling import GroupedSample
from batchcraft.report.scan import iter_batches

REJECT_COLUMNS = ("source", "file", "record", "reason", "raw")
EXAMPLE_RAW_CHARS = 240


@dataclass
class RejectTally:
    """Rejected rows counted by (source, reason), with a few examples per reason."""

    by_source_reason: dict[tuple[str, str], int]
    examples: dict[str, list[dict[str, Any]]]

    def by_reason(self) -> dict[str, int]:
        """Rejected rows per reason, most frequent first."""
        totals: Counter[str] = Counter()
        for (_, reason), count in self.by_source_reason.items():
            totals[reason] += count
        return dict(sorted(totals.items(), key=lambda item: (-item[1], item[0])))

    def by_source(self) -> dict[str, int]:
        """Rejected rows per source."""
        totals: Counter[str] = Counter()
        for (source, _), count in self.by_source_reason.items():
            totals[source] += count
        return dict(sorted(totals.items()))

    def examples_json(self) -> dict[str, list[dict[str, Any]]]:
        """The examples per reason, their raw records truncated for the report."""
        return {
            reason: [
                example | {"raw": truncate(example["raw"], EXAMPLE_RAW_CHARS)}
                for example in examples
            ]
            for reason, examples in self.examples.items()
        }


def scan_rejects(files: list[Path], examples_per_reason: int = 3, seed: int = 0) -> RejectTally:
    """Count reject files by (source, reason) and sample a few rejected records per reason."""
    counts: Counter[tuple[str, str]] = Counter()
    reasons: dict[str, int] = {}
    sample = GroupedSample(examples_per_reason)
    rng = np.random.default_rng(seed)
    for _, batch in iter_batches(files, REJECT_COLUMNS):
        pairs = pa.table({"source": batch["source"], "reason": batch["reason"]})
        grouped = pairs.group_by(["source", "reason"]).aggregate([([], "count_all")])
        for row in grouped.to_pylist():
            counts[(str(row["source"]), str(row["reason"]))] += row["count_all"]
        reason_names = [str(value) for value in batch["reason"].to_pylist()]
        codes = np.array([reasons.setdefault(name, len(reasons)) for name in reason_names])
        payload = {name: batch[name] for name in ("source", "file", "record", "raw")}
        sample.offer(codes, rng.random(batch.num_rows), payload)
    names = {code: name for name, code in reasons.items()}
    examples: dict[str, list[dict[str, Any]]] = {}
    for row in sample.rows():
        reason = names[row.pop("group")]
        row.pop("key")
        examples.setdefault(reason, []).append(row)
    return RejectTally(by_source_reason=dict(counts), examples=examples)


def rejects_html(funnel: dict[str, Any]) -> Html:
    """Rejected rows by reason (chart) and a few raw records per reason (table)."""
    reasons = funnel["rejected_by_reason"]
    if not reasons:
        return Html(heading("Rejected rows") + paragraph("No row was rejected by validation."))
    chart = bar_chart(
        list(reasons),
        [Series("rows", list(reasons.values()), OUTCOME_COLORS["rejected"])],
        title="Rejected rows by reason",
        annotate=True,
        value_label="rows",
    )
    examples = [
        [
            reason,
            example["source"],
            f"{example['file']}:{example['record']}",
            Html(f'<span class="mono">{esc(example["raw"])}</span>'),
        ]
        for reason, items in funnel.get("reject_examples", {}).items()
        for example in items
    ]
    return Html(
        heading("Rejected rows")
        + figure(chart, "Why validation rejected rows.")
        + table(
            ["reason", "source", "file:record", "raw record (truncated)"],
            examples,
            caption="A few rejected records per reason",
        )
    )
