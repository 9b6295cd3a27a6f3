"""Bar charts as inline SVG: horizontal bars and vertical columns, with their series and colours."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from batchcraft.report.charts.svg import (
    AXIS_COLOR,
    CHAR_WIDTH,
    GRID_COLOR,
    Canvas,
    Formatter,
    Scale,
    axis_titles,
    format_number,
    horizontal_grid,
    log_domain,
)

OUTCOME_COLORS = {
    "rejected": "#e15759",
    "exact": "#f28e2b",
    "near": "#b07aa1",
    "semantic": "#76b7b2",
    "kept": "#4e79a7",
    "removed_other": "#9c9c9c",
}
HALF_WIDTH = 540  # charts shown two side by side
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#9c755f")


@dataclass(frozen=True)
class Series:
    """One named, coloured sequence of values (aligned with the chart's categories or x)."""

    name: str
    values: Sequence[float]
    color: str = PALETTE[0]


def _value_scale(
    series: Sequence[Series],
    stacked: bool,
    log: bool,
    start: float,
    end: float,
    domain_max: float | None,
) -> Scale:
    if stacked:
        values = [sum(column) for column in zip(*(s.values for s in series), strict=True)]
    else:
        values = [v for s in series for v in s.values]
    if log:
        low, high = log_domain(values)
        return Scale(low, high, start, end, log=True)
    high = domain_max if domain_max is not None else max([0.0, *values])
    ticks = Scale(0.0, high or 1.0, start, end).ticks()
    return Scale(0.0, max(high, ticks[-1]) or 1.0, start, end)


def _legend(canvas: Canvas, series: Sequence[Series], x: float) -> None:
    if len(series) > 1:
        canvas.legend([(s.name, s.color) for s in series], x, 14)


@dataclass(frozen=True)
class _Bands:
    """Geometry of a horizontal bar chart: one band per category from ``top`` to ``bottom``."""

    left: float
    right: float
    top: float
    band: float
    bottom: float


def _bands(
    labels: Sequence[str], num_series: int, width: int, stacked: bool, annotate: bool
) -> _Bands:
    """Margins sized for the labels (and annotations), bands sized for the series."""
    left = min(230.0, max([40.0, *(len(c) * CHAR_WIDTH + 14 for c in labels)]))
    right = width - (70 if annotate else 24)
    band = 20.0 if stacked or num_series == 1 else 12.0 * num_series + 8
    top = 28.0 if num_series > 1 else 8.0
    return _Bands(left, right, top, band, top + band * len(labels))


def _short(label: str, limit: int = 30) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def bar_chart(
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    stacked: bool = False,
    log: bool = False,
    value_label: str = "",
    width: int = 680,
    value_format: Formatter = format_number,
    domain_max: float | None = None,
    annotate: bool = False,
) -> str:
    """Horizontal bars, one band per category; series are stacked or side by side.

    Args:
        categories: Band labels, top to bottom.
        series: Values aligned with ``categories``.
        title: Accessible title.
        stacked: Stack the series instead of grouping them.
        log: Log-scale value axis (zeros are not drawn).
        value_label: Axis title under the value axis.
        width: Width in pixels.
        value_format: Formats tick labels, tooltips and annotations.
        domain_max: Fixed upper end of the value axis (e.g. 1.0 for shares).
        annotate: Write each bar's value at its end.
    """
    labels = [_short(c) for c in categories]
    bands = _bands(labels, len(series), width, stacked, annotate)
    canvas = Canvas(width, bands.bottom + 40, title)
    scale = _value_scale(series, stacked, log, bands.left, bands.right, domain_max)
    _value_axis(canvas, scale, bands, value_format, value_label)
    for row, label in enumerate(labels):
        y = bands.top + row * bands.band
        canvas.text(bands.left - 6, y + bands.band / 2 + 4, label, anchor="end")
        _band(
            canvas,
            scale,
            bands,
            y,
            [(f"{categories[row]} · {s.name}", s.values[row], s.color) for s in series],
            stacked=stacked,
            log=log,
            annotate=annotate,
            value_format=value_format,
        )
    canvas.line(bands.left, bands.top, bands.left, bands.bottom, AXIS_COLOR)
    _legend(canvas, series, bands.left)
    return canvas.render()


def _value_axis(
    canvas: Canvas, scale: Scale, bands: _Bands, value_format: Formatter, value_label: str
) -> None:
    """Vertical grid lines across the bands, tick labels and the axis title underneath."""
    for tick in scale.ticks():
        canvas.line(scale(tick), bands.top, scale(tick), bands.bottom, GRID_COLOR)
        label_y = bands.bottom + 14
        canvas.text(scale(tick), label_y, value_format(tick), anchor="middle", fill=AXIS_COLOR)
    middle = (bands.left + bands.right) / 2
    canvas.text(middle, bands.bottom + 32, value_label, anchor="middle", fill=AXIS_COLOR)


def _band(
    canvas: Canvas,
    scale: Scale,
    bands: _Bands,
    y: float,
    bars: Sequence[tuple[str, float, str]],
    *,
    stacked: bool,
    log: bool,
    annotate: bool,
    value_format: Formatter,
) -> None:
    """One category's bars, (tip prefix, value, colour) per series: end to end or side by side."""
    offset = 0.0  # a log scale clamps 0 to its low end
    for index, (name, value, color) in enumerate(bars):
        if value <= 0 or (log and value < scale.low):
            continue
        tip = f"{name}: {value_format(value)}"
        if stacked:
            start, end = scale(offset), scale(offset + value)
            canvas.rect(start, y + 3, end - start, bands.band - 6, color, tip)
            offset += value
        else:
            thickness = (bands.band - 8) / len(bars)
            bar_y = y + 4 + index * thickness
            canvas.rect(bands.left, bar_y, scale(value) - bands.left, thickness - 1, color, tip)
            if annotate:
                canvas.text(scale(value) + 4, bar_y + thickness / 2 + 3, value_format(value))


def column_chart(
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    stacked: bool = False,
    log: bool = False,
    x_label: str = "",
    y_label: str = "",
    width: int = 680,
    height: int = 260,
    value_format: Formatter = format_number,
) -> str:
    """Vertical bars (columns), one per category; series stacked or overlaid front to back."""
    left, right, top, bottom = 58.0, width - 12.0, 28.0, height - 44.0
    canvas = Canvas(width, height, title)
    scale = _value_scale(series, stacked, log, bottom, top, None)
    horizontal_grid(canvas, scale, left, right, value_format)
    count = max(len(categories), 1)
    slot = (right - left) / count
    gap = slot * 0.15 if count <= 60 else 0.0
    label_every = max(1, round(count / 16))
    for column, label in enumerate(categories):
        x = left + column * slot
        _column(
            canvas,
            scale,
            (x + gap / 2, slot - gap, bottom),
            [(f"{label} · {s.name}", s.values[column], s.color) for s in series],
            stacked=stacked,
            log=log,
            value_format=value_format,
        )
        if column % label_every == 0:
            canvas.text(x + slot / 2, bottom + 14, label, anchor="middle", fill=AXIS_COLOR)
    canvas.line(left, bottom, right, bottom, AXIS_COLOR)
    axis_titles(canvas, x_label, y_label, (left + right) / 2, height - 8, (top + bottom) / 2)
    _legend(canvas, series, left)
    return canvas.render()


def _column(
    canvas: Canvas,
    scale: Scale,
    place: tuple[float, float, float],
    bars: Sequence[tuple[str, float, str]],
    *,
    stacked: bool,
    log: bool,
    value_format: Formatter,
) -> None:
    """One category's column at ``place`` (x, width, bottom): stacked, or overlaid in order."""
    x, width, bottom = place
    base = 0.0  # a log scale clamps 0 to its low end
    for name, value, color in bars:
        if value <= 0 or (log and value < scale.low):
            continue
        top_value = base + value if stacked else value
        bar_bottom = scale(base) if stacked else bottom
        height = bar_bottom - scale(top_value)
        canvas.rect(x, scale(top_value), width, height, color, f"{name}: {value_format(value)}")
        if stacked:
            base = top_value
