"""HTML of the run section (model, parameters, timings, inputs) and the serving section."""

from __future__ import annotations

from typing import Any

from batchcraft.report.charts.bars import HALF_WIDTH, PALETTE, Series, bar_chart
from batchcraft.report.charts.continuous import Line, line_chart, scatter
from batchcraft.report.charts.svg import esc
from batchcraft.report.html import Html, cards, figure, grid, heading, section, share, table

RUN_FACTS = (
    ("embedding model", ("embedding", "model")),
    ("embedding dim", ("embedding", "dim")),
    ("embedding precision", ("embedding", "precision")),
    ("normalized", ("embedding", "normalized")),
    ("clusters", ("clustering", "num_clusters")),
    ("k-means sample size", ("clustering", "sample_size")),
    ("eps", ("semantic_dedup", "eps")),
    ("threshold (1 − eps)", ("semantic_dedup", "threshold")),
    ("near threshold", ("semantic_dedup", "near_threshold")),
    ("keep policy", ("semantic_dedup", "keep_policy")),
    ("second cluster compared", ("semantic_dedup", "second_cluster")),
    ("paired data", ("has_pairs",)),
    ("created by", ("created_by",)),
    ("created at", ("created_at",)),
)


def _lookup(run: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = run
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def run_html(run: dict[str, Any]) -> Html:
    """Run section: model and dedup settings, stage timings, inputs and all parameters."""
    facts = table(["setting", "value"], [[name, _lookup(run, path)] for name, path in RUN_FACTS])
    timings = run["timings"]
    timing_chart = (
        figure(
            bar_chart(
                [t["stage"] for t in timings],
                [Series("seconds", [t["seconds"] for t in timings])],
                title="Seconds per stage",
                width=HALF_WIDTH,
                annotate=True,
                value_label="seconds",
            ),
            f"Wall-clock seconds per stage; {run['total_seconds']:,.1f} s in total.",
        )
        if timings
        else Html("<p class='muted'>No timings recorded.</p>")
    )
    inputs = [
        [
            item["path"],
            item["format"],
            item["source"],
            item["bytes"],
            Html(f'<span class="mono">{esc(item["sha256"])}</span>'),
        ]
        for item in run["inputs"]
    ]
    parameters = [
        [Html(f'<span class="mono">{esc(k)}</span>'), _plain(v)]
        for k, v in run["parameters"].items()
    ]
    return section(
        "run",
        "Run",
        "How this dataset was made: model, settings, time spent and the exact inputs.",
        grid(facts, timing_chart),
        heading("Inputs"),
        table(["path", "format", "source", "bytes", "sha256"], inputs, numeric=(3,)),
        heading("All parameters"),
        table(["parameter", "value"], parameters),
    )


def _plain(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)


def serving_html(serving: dict[str, Any]) -> Html:
    """Serving section: exposure versus share of the data, repeats, per-selector metrics."""
    figures = cards(
        [
            ("Batches served", f"{serving['batches']:,}", f"{len(serving['jobs'])} job(s)"),
            (
                "Examples served",
                f"{serving['served_examples']:,}",
                f"{serving['distinct_ids']:,} distinct",
            ),
            ("Coverage of kept rows", share(serving["coverage_of_kept"]), "served at least once"),
            (
                "Repeats within an epoch",
                share(serving["within_epoch_repeat_rate"]),
                f"{serving['within_epoch_repeats']:,} examples",
            ),
            ("Overall repeat rate", share(serving["overall_repeat_rate"]), "all epochs and jobs"),
        ]
    )
    lead = (
        f"What training saw, from the batch service's provenance log ({serving['files']} file(s) "
        f"in {serving['directory']}; selectors: {', '.join(serving['selectors']) or 'none'}). "
        "Bars compare each group's share of the kept data with its share of served examples."
    )
    sources = serving["by_source"]
    concepts = serving["by_concept"]
    parts: list[str] = [
        figures,
        grid(
            figure(
                _share_bars([s["source"] for s in sources], sources, "Exposure per source"),
                "Share of kept rows versus share of served examples, per source.",
            ),
            figure(
                _cluster_scatter(serving["by_cluster"]),
                "One point per cluster; points above the diagonal were served more than their share.",
            ),
        ),
    ]
    if concepts:
        parts.append(
            figure(
                _share_bars([c["concept"] for c in concepts], concepts, "Exposure per concept"),
                f"The {len(concepts)} most frequent concepts: share of kept rows versus share of served examples.",
            )
        )
    parts.extend(_metric_charts(serving["metrics"]))
    return section("serving", "Serving", lead, *parts)


def _share_bars(labels: list[str], rows: list[dict[str, Any]], title: str) -> str:
    return bar_chart(
        labels,
        [
            Series("share of kept data", [r["data_share"] for r in rows], PALETTE[0]),
            Series("share served", [r["served_share"] for r in rows], PALETTE[1]),
        ],
        title=title,
        width=HALF_WIDTH,
        value_format=lambda v: f"{100 * v:.0f} %",
        value_label="share",
    )


def _cluster_scatter(by_cluster: dict[str, list[float]]) -> str:
    data, served = by_cluster["data_share"], by_cluster["served_share"]
    tips = [
        f"cluster {c}: {100 * d:.2f} % of data, {100 * s:.2f} % served"
        for c, (d, s) in enumerate(zip(data, served, strict=True))
    ]
    return scatter(
        data,
        served,
        tips=tips,
        diagonal=True,
        title="Exposure per cluster",
        width=HALF_WIDTH,
        x_label="share of kept data",
        y_label="share served",
        height=320,
        value_format=lambda v: f"{100 * v:.1f} %",
    )


def _metric_charts(metrics: dict[str, dict[str, list[dict[str, Any]]]]) -> list[str]:
    charts: list[str] = []
    for selector, by_metric in metrics.items():
        charts.append(heading(f"Selector {selector}: batch metrics over steps"))
        figures = [
            figure(
                line_chart(
                    [
                        Line(s["job"], s["step"], s["value"], PALETTE[i % len(PALETTE)])
                        for i, s in enumerate(series)
                    ],
                    title=f"{selector}: {metric}",
                    width=HALF_WIDTH,
                    x_label="step",
                    y_label=metric,
                    height=220,
                ),
                f"{metric} per step (mean over ranks), one line per job.",
            )
            for metric, series in by_metric.items()
        ]
        for start in range(0, len(figures), 2):
            charts.append(grid(*figures[start : start + 2]))
    return charts
