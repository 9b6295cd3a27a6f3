"""The serving section's batch metrics: every selector's per-batch metrics over the steps
of each job, from the provenance log (JSON), drawn as line charts (HTML)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from batchcraft.report.charts.bars import HALF_WIDTH, PALETTE
from batchcraft.report.charts.continuous import Line, line_chart
from batchcraft.report.html import Html, figure, grid, heading
from batchcraft.report.provenance import ProvenanceLog

MAX_POINTS = 200

MetricSeries = dict[str, dict[str, list[dict[str, Any]]]]
"""Per selector and metric, one ``{"job", "step", "value"}`` series per job."""


def metric_series(log: ProvenanceLog) -> MetricSeries:
    """Per selector and metric, one series per job: mean over ranks per step, downsampled."""
    sums: dict[tuple[str, str, str], dict[int, list[float]]] = defaultdict(dict)
    for batch in log.batches:
        for metric, value in batch.info.items():
            cell = sums[(batch.selector, metric, batch.job)].setdefault(batch.step, [0.0, 0.0])
            cell[0] += value
            cell[1] += 1
    result: MetricSeries = {}
    for (selector, metric, job), by_step in sorted(sums.items()):
        steps = np.array(sorted(by_step), dtype=np.float64)
        values = np.array([by_step[int(s)][0] / by_step[int(s)][1] for s in steps])
        if len(steps) > MAX_POINTS:
            buckets = np.array_split(np.arange(len(steps)), MAX_POINTS)
            steps = np.array([steps[b].mean() for b in buckets])
            values = np.array([values[b].mean() for b in buckets])
        series = {"job": job, "step": steps.round(2).tolist(), "value": values.round(6).tolist()}
        result.setdefault(selector, {}).setdefault(metric, []).append(series)
    return result


def metric_charts(metrics: MetricSeries) -> list[Html]:
    """Per selector: a heading, then its metrics' line charts two by two."""
    charts: list[Html] = []
    for selector, by_metric in metrics.items():
        charts.append(heading(f"Selector {selector}: batch metrics over steps"))
        figures = [
            figure(
                _metric_chart(selector, metric, series),
                f"{metric} per step (mean over ranks), one line per job.",
            )
            for metric, series in by_metric.items()
        ]
        for start in range(0, len(figures), 2):
            charts.append(grid(*figures[start : start + 2]))
    return charts


def _metric_chart(selector: str, metric: str, series: list[dict[str, Any]]) -> str:
    return line_chart(
        [
            Line(s["job"], s["step"], s["value"], PALETTE[i % len(PALETTE)])
            for i, s in enumerate(series)
        ],
        title=f"{selector}: {metric}",
        width=HALF_WIDTH,
        x_label="step",
        y_label=metric,
        height=220,
    )
