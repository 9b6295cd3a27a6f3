"""Continuous-axis charts as inline SVG: stacked histograms, scatter plots and line charts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from batchcraft.report.charts.bars import PALETTE, Series
from batchcraft.report.charts.svg import (
    AXIS_COLOR,
    Canvas,
    Formatter,
    Scale,
    axis_titles,
    format_number,
    horizontal_grid,
    log_domain,
    vertical_grid,
)


@dataclass(frozen=True)
class Marker:
    """A labelled vertical reference line at ``x`` (e.g. a threshold)."""

    x: float
    label: str
    color: str = "#c0392b"


@dataclass(frozen=True)
class Line:
    """One line of a line chart."""

    name: str
    x: Sequence[float]
    y: Sequence[float]
    color: str = PALETTE[0]


def _frame(width: int, height: int, legend: bool) -> tuple[float, float, float, float]:
    """Plot area (left, right, top, bottom) inside a chart of the given size."""
    return 62.0, width - 16.0, 30.0 if legend else 12.0, height - 42.0


def histogram(
    edges: Sequence[float],
    series: Sequence[Series],
    *,
    title: str,
    markers: Sequence[Marker] = (),
    log: bool = False,
    x_label: str = "",
    y_label: str = "rows",
    width: int = 680,
    height: int = 280,
) -> str:
    """Stacked histogram over bins ``edges`` (len = bins + 1), with reference markers."""
    left, right, top, bottom = _frame(width, height, legend=True)
    canvas = Canvas(width, height, title)
    x_scale = Scale(edges[0], edges[-1], left, right)
    totals = [sum(values) for values in zip(*(s.values for s in series), strict=True)]
    if log:
        low, high = log_domain(totals)
        y_scale = Scale(low, high, bottom, top, log=True)
    else:
        y_scale = Scale(0.0, max([1.0, *totals]) * 1.05, bottom, top)
    horizontal_grid(canvas, y_scale, left, right, format_number)
    vertical_grid(canvas, x_scale, bottom, bottom, lambda v: f"{v:.2f}")
    _bins(canvas, edges, series, x_scale, y_scale)
    canvas.line(left, bottom, right, bottom, AXIS_COLOR)
    _markers(canvas, markers, x_scale, (left + right) / 2, top, bottom)
    axis_titles(canvas, x_label, y_label, (left + right) / 2, height - 8, (top + bottom) / 2)
    canvas.legend([(s.name, s.color) for s in series], left, 14)
    return canvas.render()


def _bins(
    canvas: Canvas,
    edges: Sequence[float],
    series: Sequence[Series],
    x_scale: Scale,
    y_scale: Scale,
) -> None:
    """One stacked column per bin, each series on top of the previous ones."""
    for index in range(len(edges) - 1):
        base = 0.0  # a log scale clamps 0 to its bottom
        x0, x1 = x_scale(edges[index]), x_scale(edges[index + 1])
        for s in series:
            value = s.values[index]
            if value <= 0:
                continue
            tip = f"[{edges[index]:.3f}, {edges[index + 1]:.3f}) {s.name}: {value:,}"
            canvas.rect(
                x0,
                y_scale(base + value),
                max(x1 - x0 - 0.3, 0.6),
                y_scale(base) - y_scale(base + value),
                s.color,
                tip,
            )
            base += value


def _markers(
    canvas: Canvas,
    markers: Sequence[Marker],
    x_scale: Scale,
    middle: float,
    top: float,
    bottom: float,
) -> None:
    """Dashed vertical lines, labelled on the side that faces the plot's middle."""
    for number, marker in enumerate(markers):
        x = x_scale(marker.x)
        canvas.line(x, top, x, bottom, marker.color, width=1.5, dash="5 3")
        anchor = "end" if x > middle else "start"
        canvas.text(
            x + (-4 if anchor == "end" else 4),
            top + 12 + 14 * number,
            marker.label,
            anchor=anchor,
            fill=marker.color,
            weight="600",
        )


def scatter(
    x: Sequence[float],
    y: Sequence[float],
    *,
    title: str,
    radius: Sequence[float] | None = None,
    colors: Sequence[str] | None = None,
    tips: Sequence[str] | None = None,
    labels: dict[int, str] | None = None,
    diagonal: bool = False,
    x_label: str = "",
    y_label: str = "",
    value_format: Formatter = format_number,
    width: int = 680,
    height: int = 380,
) -> str:
    """Scatter plot; ``diagonal`` draws y = x (for "share served vs share of data")."""
    left, right, top, bottom = _frame(width, height, legend=False)
    canvas = Canvas(width, height, title)
    pad = max(radius or [3.0]) + 4
    x_low, x_high = _padded(x, diagonal, y)
    y_low, y_high = _padded(y, diagonal, x)
    x_scale = Scale(x_low, x_high, left + pad, right - pad)
    y_scale = Scale(y_low, y_high, bottom - pad, top + pad)
    horizontal_grid(canvas, y_scale, left, right, value_format)
    vertical_grid(canvas, x_scale, top, bottom, value_format)
    if diagonal:
        low, high = max(x_low, y_low), min(x_high, y_high)
        canvas.line(
            x_scale(low), y_scale(low), x_scale(high), y_scale(high), AXIS_COLOR, dash="4 4"
        )
    points = [(x_scale(x[i]), y_scale(y[i])) for i in range(len(x))]
    _points(canvas, points, radius, colors, tips, labels)
    canvas.line(left, bottom, right, bottom, AXIS_COLOR)
    canvas.line(left, top, left, bottom, AXIS_COLOR)
    axis_titles(canvas, x_label, y_label, (left + right) / 2, height - 8, (top + bottom) / 2)
    return canvas.render()


def _points(
    canvas: Canvas,
    points: Sequence[tuple[float, float]],
    radius: Sequence[float] | None,
    colors: Sequence[str] | None,
    tips: Sequence[str] | None,
    labels: dict[int, str] | None,
) -> None:
    """Circles at pixel ``points``, big ones first so small ones stay visible on top."""
    order = sorted(range(len(points)), key=lambda i: -(radius[i] if radius else 0.0))
    for i in order:
        canvas.circle(
            *points[i],
            radius[i] if radius else 3.5,
            colors[i] if colors else PALETTE[0],
            tips[i] if tips else "",
        )
    for i, text in (labels or {}).items():
        x, y = points[i]
        canvas.text(x, y + 4, text, anchor="middle", size=10, weight="600")


def _padded(values: Sequence[float], diagonal: bool, other: Sequence[float]) -> tuple[float, float]:
    pool = [*values, *other] if diagonal else list(values)
    if not pool:
        return 0.0, 1.0
    low, high = min(pool), max(pool)
    if diagonal:
        low = min(low, 0.0)
    if math.isclose(low, high):
        return low - 1.0, high + 1.0
    return low, high


def line_chart(
    lines: Sequence[Line],
    *,
    title: str,
    log_x: bool = False,
    log_y: bool = False,
    x_label: str = "",
    y_label: str = "",
    width: int = 680,
    height: int = 260,
) -> str:
    """Lines over a shared x axis (optionally log-log, e.g. rank versus frequency)."""
    left, right, top, bottom = _frame(width, height, legend=len(lines) > 1)
    canvas = Canvas(width, height, title)
    xs = [v for line in lines for v in line.x]
    ys = [v for line in lines for v in line.y]
    x_scale = _axis_scale(xs, log_x, left, right)
    y_scale = _axis_scale(ys, log_y, bottom, top)
    horizontal_grid(canvas, y_scale, left, right, format_number)
    vertical_grid(canvas, x_scale, bottom, bottom, format_number)
    for line in lines:
        points = [
            (x_scale(a), y_scale(b))
            for a, b in zip(line.x, line.y, strict=True)
            if (a > 0 or not log_x) and (b > 0 or not log_y)
        ]
        if len(points) == 1:
            canvas.circle(*points[0], 3.0, line.color, line.name, opacity=1.0)
        elif points:
            canvas.polyline(points, line.color)
    canvas.line(left, bottom, right, bottom, AXIS_COLOR)
    canvas.line(left, top, left, bottom, AXIS_COLOR)
    axis_titles(canvas, x_label, y_label, (left + right) / 2, height - 8, (top + bottom) / 2)
    if len(lines) > 1:
        canvas.legend([(line.name, line.color) for line in lines], left, 14)
    return canvas.render()


def _axis_scale(values: Sequence[float], log: bool, start: float, end: float) -> Scale:
    if log:
        low, high = log_domain(values)
        return Scale(low, high, start, end, log=True)
    if not values:
        return Scale(0.0, 1.0, start, end)
    low, high = min(values), max(values)
    span = (high - low) or abs(high) or 1.0
    return Scale(low - 0.05 * span, high + 0.05 * span, start, end)
