"""HTML of the cluster and concept sections."""

from __future__ import annotations

import math
from typing import Any

from batchcraft.report.charts.bars import HALF_WIDTH, Series, bar_chart, column_chart
from batchcraft.report.charts.bars import OUTCOME_COLORS as COLORS
from batchcraft.report.charts.continuous import Line, line_chart, scatter
from batchcraft.report.charts.svg import esc
from batchcraft.report.html import (
    Html,
    badge,
    figure,
    grid,
    heading,
    section,
    text_block,
)

MAX_COLUMNS = 200


def clusters_html(clusters: dict[str, Any]) -> Html:
    """Cluster section: size distribution, centroid map and samples of extreme clusters."""
    parts = [_size_chart(clusters["sizes"], clusters["kept"])]
    if clusters["map"] is not None:
        parts.append(figure(_centroid_map(clusters), _map_caption(clusters)))
    for title, key in (("Largest clusters", "largest"), ("Smallest clusters", "smallest")):
        parts.append(heading(title))
        parts.extend(_cluster_card(item) for item in clusters[key])
    summary = clusters["size_summary"]
    lead = (
        f"{clusters['num_clusters']:,} k-means clusters; sizes range from {summary['min']:,} to "
        f"{summary['max']:,} rows (median {summary['median']:g}); {clusters['num_empty']:,} "
        "empty. Samples show what a cluster holds; centroid similarity says how typical a row is."
    )
    return section("clusters", "Clusters", lead, *parts)


def _size_chart(sizes: list[int], kept: list[int]) -> Html:
    """Cluster sizes largest first: kept/removed stacks, or a log scale when sizes are skewed."""
    order = sorted(range(len(sizes)), key=lambda c: (-sizes[c], c))
    ranked = len(order) > MAX_COLUMNS
    labels = [str(c) for c in order]
    if ranked:  # evenly spaced ranks keep the shape of the curve
        ranks = [round(i * (len(order) - 1) / (MAX_COLUMNS - 1)) for i in range(MAX_COLUMNS)]
        order, labels = [order[r] for r in ranks], [f"#{r + 1}" for r in ranks]
    nonempty = sorted(size for size in sizes if size > 0)
    skewed = bool(nonempty) and nonempty[-1] > 30 * nonempty[len(nonempty) // 2]
    if skewed:
        series = [Series("rows", [sizes[c] for c in order], COLORS["kept"])]
        caption = "Rows per cluster on a log scale (sizes are very uneven)."
    else:
        series = [
            Series("kept", [kept[c] for c in order], COLORS["kept"]),
            Series("removed", [sizes[c] - kept[c] for c in order], COLORS["removed_other"]),
        ]
        caption = "Rows per cluster, split into kept and removed duplicates."
    if ranked:
        caption += f" {MAX_COLUMNS} evenly spaced ranks of {len(sizes):,} clusters."
    chart = column_chart(
        labels,
        series,
        title="Cluster sizes, largest first",
        stacked=not skewed,
        log=skewed,
        x_label="clusters ranked by size" if ranked else "cluster (largest first)",
        y_label="rows (log scale)" if skewed else "rows",
    )
    return figure(chart, caption)


def _centroid_map(clusters: dict[str, Any]) -> str:
    sizes, points = clusters["sizes"], clusters["map"]
    largest = max(sizes) or 1
    radius = [2.5 + 15.0 * math.sqrt(size / largest) for size in sizes]
    tips = [
        f"cluster {c}: {sizes[c]:,} rows, {clusters['kept'][c]:,} kept, mean centroid sim "
        f"{clusters['mean_centroid_sim'][c]}"
        for c in range(len(sizes))
    ]
    labels = {item["cluster"]: str(item["cluster"]) for item in clusters["largest"]}
    return scatter(
        points["x"],
        points["y"],
        radius=radius,
        tips=tips,
        labels=labels,
        title="Centroid map (PCA)",
        x_label="PC 1",
        y_label="PC 2",
        height=340,
    )


def _map_caption(clusters: dict[str, Any]) -> str:
    explained = clusters["map"]["explained_variance"]
    return (
        f"Centroids projected on their first two principal components ({100 * explained[0]:.0f} % "
        f"and {100 * explained[1]:.0f} % of variance); area ∝ cluster size; largest labelled."
    )


def _similarity_label(value: float) -> str:
    return f"centroid sim {value:.3f}"


def _cluster_card(item: dict[str, Any]) -> Html:
    samples = "".join(
        f"<div>{badge(_similarity_label(s['centroid_sim']))}"
        f"{badge(s['source'] or '?')}{badge(s['dup_kind'], s['dup_kind']) if s['dup_kind'] else ''}"
        f"{text_block(s['text'], s['pair_text'])}</div>"
        for s in item["samples"]
    )
    head = (
        f"Cluster {item['cluster']} · {item['rows']:,} rows · {item['kept']:,} kept · "
        f"mean centroid similarity {item['mean_centroid_sim']:.3f}"
    )
    return Html(f'<div class="cluster"><div class="head">{esc(head)}</div>{samples}</div>')


def concepts_html(concepts: dict[str, Any]) -> Html:
    """Concept section: top concepts (log scale), rank-frequency tail, concepts per row."""
    if not concepts["num_distinct"]:
        return section("concepts", "Concepts", "No kept row carries a concept annotation.")
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
    ranks = concepts["rank_frequency"]
    tail = line_chart(
        [Line("concepts", list(range(1, len(ranks) + 1)), ranks)],
        log_x=True,
        log_y=True,
        title="Concept rank versus frequency",
        width=HALF_WIDTH,
        x_label="rank (log)",
        y_label="kept rows (log)",
    )
    per_row = concepts["per_row_kept"]
    histogram_chart = column_chart(
        [str(n) for n in range(len(per_row))],
        [Series("rows", per_row)],
        title="Concepts per row",
        x_label="concepts on a row",
        y_label="kept rows",
        height=240,
    )
    lead = (
        f"{concepts['num_distinct']:,} distinct concepts over kept rows ({concepts['singletons']:,} "
        f"seen once); {concepts['mean_per_row']:.2f} per row on average; "
        f"{concepts['rows_without_concepts']:,} rows have none."
    )
    return section(
        "concepts",
        "Concepts",
        lead,
        grid(
            figure(bars, f"Top {len(top)} concepts."),
            figure(tail, "A straight line on log-log axes means a power-law long tail."),
        ),
        figure(histogram_chart, "How many concepts each kept row carries."),
    )
