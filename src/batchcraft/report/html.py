"""HTML building blocks of the report: escaping, tables, figures, cards, badges and sections.

Every value that reaches the page goes through ``esc`` unless it is ``Html`` built by
this package, so text from the corpus (which may contain markup such as ``<script>``)
is always shown as text. The page also carries a Content-Security-Policy that forbids
scripts and any network request, as a second line of defence.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from batchcraft.report.charts.svg import esc

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'"
CSP_META = f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'


class Html(str):
    """A string of trusted markup produced by this package (inserted without escaping)."""

    __slots__ = ()


def cell(value: object) -> str:
    """A value as safe HTML: Html as is, numbers with thousands separators, rest escaped."""
    if isinstance(value, Html):
        return value
    if value is None:
        return '<span class="muted">—</span>'
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    return esc(value)


def percent(value: float, digits: int = 1) -> str:
    """A percentage (0–100) as text."""
    return f"{value:.{digits}f} %"


def share(value: float) -> str:
    """A share (0–1) as a percentage text."""
    return f"{100 * value:.1f} %"


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    numeric: Iterable[int] = (),
    row_classes: Sequence[str] | None = None,
    caption: str = "",
) -> Html:
    """A table; columns whose index is in ``numeric`` are right-aligned."""
    right = set(numeric)

    def align(index: int) -> str:
        return ' class="num"' if index in right else ""

    head = "".join(f"<th{align(i)}>{esc(h)}</th>" for i, h in enumerate(headers))
    body = []
    for number, row in enumerate(rows):
        css = f' class="{row_classes[number]}"' if row_classes and row_classes[number] else ""
        cells = "".join(f"<td{align(i)}>{cell(v)}</td>" for i, v in enumerate(row))
        body.append(f"<tr{css}>{cells}</tr>")
    title = f"<caption>{esc(caption)}</caption>" if caption else ""
    return Html(
        f'<div class="table-wrap"><table>{title}<thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def figure(svg: str, caption: str) -> Html:
    """A chart with a caption underneath."""
    return Html(f"<figure>{svg}<figcaption>{esc(caption)}</figcaption></figure>")


def cards(items: Sequence[tuple[str, str, str]]) -> Html:
    """Key-figure cards: (label, value, note) each."""
    parts = [
        f'<div class="kpi"><div class="label">{esc(label)}</div>'
        f'<div class="value">{esc(value)}</div><div class="note">{esc(note)}</div></div>'
        for label, value, note in items
    ]
    return Html(f'<div class="kpis">{"".join(parts)}</div>')


def badge(text: str, kind: str = "") -> Html:
    """A small rounded label."""
    return Html(f'<span class="badge {esc(kind)}">{esc(text)}</span>')


def text_block(text: str | None, pair_text: str | None = None) -> Html:
    """Corpus text (and its paired text, if any), escaped, whitespace preserved."""
    if text is None:
        return Html('<div class="text muted">(text not found)</div>')
    pair = "" if pair_text is None else f'<div class="text pair-text">{esc(pair_text)}</div>'
    return Html(f'<div class="text">{esc(text)}</div>{pair}')


def section(anchor: str, title: str, lead: str, *body: str) -> Html:
    """A titled report section with an explanatory lead paragraph."""
    return Html(
        f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2><p class="lead">{esc(lead)}</p>'
        f"{''.join(body)}</section>"
    )


def grid(*items: str) -> Html:
    """Items side by side (two columns on wide screens, stacked when narrow or printed)."""
    return Html(f'<div class="grid2">{"".join(f"<div>{item}</div>" for item in items)}</div>')


def heading(text: str) -> Html:
    """A sub-heading inside a section."""
    return Html(f"<h3>{esc(text)}</h3>")


def paragraph(text: str, css: str = "") -> Html:
    """A paragraph of escaped text."""
    attribute = f' class="{esc(css)}"' if css else ""
    return Html(f"<p{attribute}>{esc(text)}</p>")


def warnings_box(warnings: Sequence[str]) -> Html:
    """The prominent list of problems found (empty string when there are none)."""
    if not warnings:
        return Html("")
    items = "".join(f"<li>{esc(w)}</li>" for w in warnings)
    return Html(
        f'<div class="warning" role="alert"><strong>{len(warnings)} warning'
        f"{'s' if len(warnings) != 1 else ''}: the data and its manifest need attention."
        f"</strong><ul>{items}</ul></div>"
    )
