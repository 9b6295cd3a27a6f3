"""HTML of the duplicate section: max_sim histogram, what-if table, example pairs."""

from __future__ import annotations

from typing import Any

from batchcraft.report.charts.bars import OUTCOME_COLORS as COLORS
from batchcraft.report.charts.bars import Series
from batchcraft.report.charts.continuous import Marker, histogram
from batchcraft.report.charts.svg import esc
from batchcraft.report.html import (
    Html,
    badge,
    figure,
    heading,
    paragraph,
    percent,
    section,
    table,
    text_block,
)


def duplicates_html(duplicates: dict[str, Any]) -> Html:
    """Duplicate section: max_sim histogram, what-if table and example pairs."""
    hist = duplicates["histogram"]
    series = [
        Series(name.replace("_", " "), hist[name], COLORS[name])
        for name in ("kept", "near", "semantic", "removed_other")
        if any(hist[name])
    ]
    markers = [Marker(duplicates["threshold"], f"threshold {duplicates['threshold']:.3f}")]
    if duplicates["near_threshold"] is not None:
        markers.append(
            Marker(
                duplicates["near_threshold"], f"near {duplicates['near_threshold']:.3f}", "#7b4f9d"
            )
        )
    chart = histogram(
        hist["bin_edges"],
        series or [Series("rows", [0] * (len(hist["bin_edges"]) - 1))],
        title="Distribution of max_sim",
        markers=markers,
        log=True,
        x_label="max_sim: highest cosine similarity to another compared row",
        y_label="rows (log scale)",
    )
    what_if = [
        [
            row["eps"],
            row["threshold"],
            row["rows_at_or_above"],
            percent(row["percent_of_stage_input"], 2),
            row["actually_removed"],
        ]
        for row in duplicates["what_if"]
    ]
    classes = ["chosen" if row["chosen"] else "" for row in duplicates["what_if"]]
    lead = (
        f"Semantic dedup compared {duplicates['stage_rows']:,} rows (exact duplicates excluded) and "
        f"removed rows at cosine ≥ {duplicates['threshold']:.4g} (eps {duplicates['eps']:.4g}, keep "
        f"policy {duplicates['keep_policy']}). Judge the threshold from the pairs below."
    )
    return section(
        "duplicates",
        "Duplicates",
        lead,
        figure(chart, "Rows by max_sim, coloured by outcome; dashed lines mark the thresholds."),
        heading("What if eps were different?"),
        table(
            [
                "eps",
                "threshold",
                "rows with max_sim ≥ threshold",
                "% of compared rows",
                "actually removed",
            ],
            what_if,
            numeric=range(5),
            row_classes=classes,
        ),
        paragraph(duplicates["what_if_note"], "muted"),
        heading("Example duplicate pairs"),
        *(_pair_html(example) for example in duplicates["examples"]),
    )


def _below_threshold_note(example: dict[str, Any]) -> str:
    if not example.get("below_threshold"):
        return ""
    return ' <span class="bad">· below the threshold: check the pipeline\'s dup_of</span>'


def _pair_html(example: dict[str, Any]) -> Html:
    similarity = example["similarity"]
    facts = (
        f"{example['group']} · cosine to representative "
        f"{'n/a' if similarity is None else f'{similarity:.4f}'} · max_sim {example['max_sim']}"
    )
    return Html(
        f'<div class="pair"><div class="head">{badge(example["dup_kind"], example["dup_kind"])}'
        f"{esc(facts)}{_below_threshold_note(example)}</div>"
        f"<div>{badge('removed')}{badge(example['source'] or '?')}{text_block(example['text'], example['pair_text'])}</div>"
        f"<div>{badge('kept', 'kept')}{badge(example['representative_source'] or '?')}"
        f"{text_block(example['representative_text'], example['representative_pair_text'])}</div></div>"
    )
