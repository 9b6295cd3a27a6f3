"""HTML of the funnel section: rows per stage and per source, rejects by reason."""

from __future__ import annotations

from typing import Any

from batchcraft.report.charts.bars import HALF_WIDTH, Series, bar_chart
from batchcraft.report.charts.bars import OUTCOME_COLORS as COLORS
from batchcraft.report.charts.svg import esc
from batchcraft.report.html import (
    Html,
    figure,
    grid,
    heading,
    paragraph,
    percent,
    section,
    table,
)


def funnel_html(funnel: dict[str, Any], reconciliation: dict[str, Any]) -> Html:
    """Funnel section: remaining rows per stage, outcome per source, rejects by reason."""
    total = funnel["total"]
    stages = funnel["stages"]
    remaining = bar_chart(
        ["input", "after validation", "after exact dedup", "after semantic dedup (kept)"],
        [Series("rows", [stages[0]["in"], *(s["kept"] for s in stages)], COLORS["kept"])],
        title="Rows remaining after each stage",
        width=HALF_WIDTH,
        annotate=True,
        value_label="rows",
    )
    sources = [*funnel["by_source"], "all sources"]
    rows = [*funnel["by_source"].values(), total]
    keys = [
        ("rejected", "rejected"),
        ("exact_duplicates", "exact"),
        ("near_duplicates", "near"),
        ("semantic_duplicates", "semantic"),
        ("kept", "kept"),
    ]
    outcome = bar_chart(
        sources,
        [
            Series(label, [r[key] / r["in"] if r["in"] else 0.0 for r in rows], COLORS[label])
            for key, label in keys
        ],
        title="Outcome of every input row, per source",
        width=HALF_WIDTH,
        stacked=True,
        domain_max=1.0,
        value_format=lambda v: f"{100 * v:.0f} %",
        value_label="share of the source's input rows",
    )
    headers = [
        "source",
        "input",
        "rejected",
        "exact dup.",
        "near dup.",
        "semantic dup.",
        "kept",
        "kept %",
    ]
    body = [
        [
            name,
            r["in"],
            r["rejected"],
            r["exact_duplicates"],
            r["near_duplicates"],
            r["semantic_duplicates"],
            r["kept"],
            percent(100 * r["kept"] / r["in"] if r["in"] else 0),
        ]
        for name, r in zip(sources, rows, strict=True)
    ]
    classes = [""] * (len(body) - 1) + ["total"]
    check = (
        Html(
            f'<p class="ok">✓ All {reconciliation["checked"]} counts agree with manifest.json.</p>'
        )
        if reconciliation["ok"]
        else _mismatch_table(reconciliation)
    )
    parts = [
        grid(
            figure(remaining, "Each stage removes rows; the last bar is the curated dataset."),
            figure(outcome, "Rejected (red), exact / near / semantic duplicates, kept (blue)."),
        ),
        table(headers, body, numeric=range(1, 8), row_classes=classes),
        check,
        _rejects_html(funnel),
    ]
    lead = (
        "Every input row ends in exactly one bucket: rejected by validation, removed as an exact, "
        "near or semantic duplicate, or kept. Counts come from data/ and rejects/ and are checked "
        "field by field against the manifest's accounting."
    )
    return section("funnel", "Funnel", lead, *parts)


def _mismatch_table(reconciliation: dict[str, Any]) -> Html:
    mismatches = reconciliation["mismatches"]
    rows = [[m["field"], m["manifest"], m["data"]] for m in mismatches[:50]]
    note = f"✗ {len(mismatches)} of {reconciliation['checked']} counts disagree with manifest.json"
    return Html(
        f'<p class="bad">{esc(note)} (the numbers above are computed from the data).</p>'
        + table(["field", "manifest.json", "data"], rows, numeric=(1, 2))
    )


def _rejects_html(funnel: dict[str, Any]) -> Html:
    reasons = funnel["rejected_by_reason"]
    if not reasons:
        return Html(heading("Rejected rows") + paragraph("No row was rejected by validation."))
    chart = bar_chart(
        list(reasons),
        [Series("rows", list(reasons.values()), COLORS["rejected"])],
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
