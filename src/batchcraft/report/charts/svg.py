"""SVG primitives for the report's charts: a canvas, scales with nice ticks, number format.

Charts are plain inline SVG so the report is one self-contained, printable file with
selectable text and hover tooltips (``<title>``), and needs no plotting dependency.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif"
AXIS_COLOR = "#5f6b7a"
GRID_COLOR = "#e3e7ec"
TEXT_COLOR = "#1f2933"
CHAR_WIDTH = 6.2  # average glyph width at 11px, to size margins for labels

Formatter = Callable[[float], str]


def esc(value: object) -> str:
    """``value`` as text safe inside SVG/HTML content and attributes."""
    return html.escape(str(value), quote=True)


def format_number(value: float) -> str:
    """Compact human-readable number: 950, 12.3k, 4.5M, 0.951, 1e-05."""
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else str(value)
    magnitude = abs(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if magnitude >= limit:
            return f"{value / limit:.3g}{suffix}"
    if magnitude >= 1:
        return f"{value:.4g}"
    if magnitude >= 1e-3:
        return f"{value:.3g}"
    return f"{value:.0e}"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2, 5 × 10^k steps) covering [low, high]."""
    if high <= low:
        high = low + 1.0
    raw_step = (high - low) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw_step))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw_step)
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


def log_ticks(low: float, high: float) -> list[float]:
    """Powers of ten in [low, high] (with 2 and 5 multiples when the range is short)."""
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    multiples = (1, 2, 5) if math.log10(high / low) <= 2.6 else (1,)
    ticks = [m * 10.0**e for e in range(first, last + 1) for m in multiples]
    return [t for t in ticks if low * (1 - 1e-9) <= t <= high * (1 + 1e-9)]


class Scale:
    """Maps data values in [low, high] to pixels in [start, end], linearly or in log10."""

    def __init__(self, low: float, high: float, start: float, end: float, log: bool = False):
        if log:
            low = max(low, 1e-12)
            high = max(high, low * 10)
        elif high <= low:
            high = low + 1.0
        self.low, self.high, self.start, self.end, self.log = low, high, start, end, log

    def _t(self, value: float) -> float:
        if self.log:
            value = max(value, self.low)
            return (math.log10(value) - math.log10(self.low)) / (
                math.log10(self.high) - math.log10(self.low)
            )
        return (value - self.low) / (self.high - self.low)

    def __call__(self, value: float) -> float:
        return self.start + self._t(value) * (self.end - self.start)

    def ticks(self, count: int = 5) -> list[float]:
        """Tick values inside the domain."""
        if self.log:
            return log_ticks(self.low, self.high)
        return [t for t in nice_ticks(self.low, self.high, count) if self.low <= t <= self.high]


def log_domain(values: Sequence[float]) -> tuple[float, float]:
    """A log-axis domain around the positive ``values``.

    The low end sits a little below the power of ten under the smallest value, so a
    count of 1 still shows as a visible bar; the high end leaves room for labels.
    """
    positive = [v for v in values if v > 0]
    if not positive:
        return 0.6, 10.0
    low = 0.6 * 10.0 ** math.floor(math.log10(min(positive)))
    high = max(positive) * 1.6
    return low, max(high, low * 10)


class Canvas:
    """Accumulates SVG elements; ``render`` returns the ``<svg>`` element as a string.

    Args:
        width: Width in pixels (the chart scales down responsively).
        height: Height in pixels.
        title: Accessible title of the chart (also the hover text on its background).
    """

    def __init__(self, width: float, height: float, title: str) -> None:
        self.width, self.height, self.title = width, height, title
        self.parts: list[str] = []

    def rect(self, x: float, y: float, w: float, h: float, fill: str, tip: str = "") -> None:
        """A filled rectangle, with hover text ``tip``."""
        title = f"<title>{esc(tip)}</title>" if tip else ""
        self.parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{max(h, 0):.1f}" '
            f'fill="{fill}">{title}</rect>'
        )

    def line(
        self,
        x1: float,
        y1: float,
        x2: float,
        y2: float,
        stroke: str = AXIS_COLOR,
        width: float = 1.0,
        dash: str = "",
    ) -> None:
        """A straight line."""
        dashes = f' stroke-dasharray="{dash}"' if dash else ""
        self.parts.append(
            f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
            f'stroke="{stroke}" stroke-width="{width}"{dashes}/>'
        )

    def text(
        self,
        x: float,
        y: float,
        content: object,
        anchor: str = "start",
        size: int = 11,
        fill: str = TEXT_COLOR,
        weight: str = "normal",
        rotate: bool = False,
    ) -> None:
        """A text label (escaped); ``rotate`` turns it to read bottom-up."""
        turn = f' transform="rotate(-90 {x:.1f} {y:.1f})"' if rotate else ""
        self.parts.append(
            f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" '
            f'fill="{fill}" font-weight="{weight}"{turn}>{esc(content)}</text>'
        )

    def circle(
        self, x: float, y: float, radius: float, fill: str, tip: str = "", opacity: float = 0.75
    ) -> None:
        """A filled circle with a white outline."""
        title = f"<title>{esc(tip)}</title>" if tip else ""
        self.parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius:.1f}" fill="{fill}" '
            f'fill-opacity="{opacity}" stroke="#ffffff" stroke-width="0.8">{title}</circle>'
        )

    def polyline(
        self, points: Sequence[tuple[float, float]], stroke: str, width: float = 1.8
    ) -> None:
        """A connected line through ``points``."""
        coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        self.parts.append(
            f'<polyline points="{coords}" fill="none" stroke="{stroke}" stroke-width="{width}" '
            'stroke-linejoin="round"/>'
        )

    def legend(self, entries: Sequence[tuple[str, str]], x: float, y: float) -> None:
        """Colour swatches with labels, laid out left to right from (x, y)."""
        for label, color in entries:
            self.rect(x, y - 9, 10, 10, color)
            self.text(x + 14, y, label)
            x += 14 + len(label) * CHAR_WIDTH + 16

    def render(self) -> str:
        """The complete ``<svg>`` element."""
        return (
            f'<svg class="chart" role="img" '
            f'width="{self.width:.0f}" height="{self.height:.0f}" '
            f'viewBox="0 0 {self.width:.0f} {self.height:.0f}" font-family="{esc(FONT)}">'
            f"<title>{esc(self.title)}</title>{''.join(self.parts)}</svg>"
        )


def horizontal_grid(
    canvas: Canvas, scale: Scale, left: float, right: float, value_format: Formatter
) -> None:
    """Horizontal grid lines with value labels on the left (for a vertical value axis)."""
    for tick in scale.ticks():
        canvas.line(left, scale(tick), right, scale(tick), GRID_COLOR)
        canvas.text(left - 6, scale(tick) + 4, value_format(tick), anchor="end", fill=AXIS_COLOR)


def vertical_grid(
    canvas: Canvas, scale: Scale, top: float, bottom: float, value_format: Formatter
) -> None:
    """Vertical grid lines with value labels underneath (for a horizontal value axis)."""
    for tick in scale.ticks(6):
        canvas.line(scale(tick), top, scale(tick), bottom, GRID_COLOR)
        canvas.text(scale(tick), bottom + 14, value_format(tick), anchor="middle", fill=AXIS_COLOR)


def axis_titles(
    canvas: Canvas, x_label: str, y_label: str, x_mid: float, x_baseline: float, y_mid: float
) -> None:
    """Axis titles: under the x axis and rotated left of the y axis."""
    if x_label:
        canvas.text(x_mid, x_baseline, x_label, anchor="middle", fill=AXIS_COLOR)
    if y_label:
        canvas.text(14, y_mid, y_label, anchor="middle", fill=AXIS_COLOR, rotate=True)
