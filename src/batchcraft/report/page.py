"""The report page: stylesheet, header with key figures, table of contents and sections."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from batchcraft.report.charts.svg import esc, format_number
from batchcraft.report.html import CSP_META, Html, cards, percent, warnings_box

STYLE = """
:root { --ink:#1f2933; --muted:#5f6b7a; --line:#e3e7ec; --panel:#ffffff; --bg:#f4f6f8;
  --accent:#4e79a7; --warn:#b45309; --bad:#c0392b; --ok:#2f855a; }
* { box-sizing:border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
  font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif; }
header.top { background:#1f2d3d; color:#fff; padding:22px 0 18px; }
header.top .inner, main { max-width:1140px; margin:0 auto; padding:0 28px; }
header.top h1 { margin:0; font-size:22px; font-weight:600; letter-spacing:.01em; }
header.top .meta { color:#c3cfdb; font-size:13px; margin-top:4px; }
main { padding-top:18px; padding-bottom:48px; }
nav.toc { display:flex; flex-wrap:wrap; gap:6px 16px; font-size:13px; margin:12px 0 4px; }
nav.toc a { color:var(--accent); text-decoration:none; }
section { background:var(--panel); border:1px solid var(--line); border-radius:8px;
  padding:18px 24px 20px; margin:18px 0; }
h2 { font-size:19px; margin:0 0 2px; }
h3 { font-size:15px; margin:20px 0 6px; }
p.lead { color:var(--muted); margin:0 0 12px; max-width:900px; }
.muted { color:var(--muted); }
.kpis { display:grid; grid-template-columns:repeat(auto-fit,minmax(160px,1fr)); gap:12px; margin:14px 0; }
.kpi { background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:10px 14px; }
.kpi .label { color:var(--muted); font-size:11.5px; text-transform:uppercase; letter-spacing:.05em; }
.kpi .value { font-size:23px; font-weight:600; font-variant-numeric:tabular-nums; }
.kpi .note { color:var(--muted); font-size:12px; }
.table-wrap { overflow-x:auto; }
table { border-collapse:collapse; width:100%; font-size:13px; margin:6px 0 10px; }
caption { text-align:left; color:var(--muted); font-size:12.5px; padding-bottom:4px; }
th, td { padding:5px 9px; border-bottom:1px solid var(--line); text-align:left; vertical-align:top; }
th { color:var(--muted); font-weight:600; background:#f8fafc; }
.num { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
tr.total td { font-weight:600; border-top:2px solid var(--line); }
tr.chosen td { background:#eef4fb; font-weight:600; }
tr.bad td { background:#fdecea; }
.warning { background:#fff7ed; border:1px solid #f5c89a; border-left:5px solid var(--warn);
  border-radius:6px; padding:10px 16px; margin:14px 0; }
.warning ul { margin:6px 0 0; padding-left:20px; }
.ok { color:var(--ok); font-weight:600; }
.bad { color:var(--bad); font-weight:600; }
figure { margin:10px 0 14px; }
figcaption { color:var(--muted); font-size:12.5px; margin-top:2px; }
svg.chart { display:block; max-width:100%; height:auto; }
.grid2 { display:grid; grid-template-columns:1fr 1fr; gap:22px; align-items:start; }
.grid2 > div { min-width:0; }
.cluster { border:1px solid var(--line); border-radius:6px; padding:8px 12px; margin:8px 0; }
.cluster .head { font-weight:600; margin-bottom:4px; }
.text { white-space:pre-wrap; overflow-wrap:anywhere; background:#f8fafc; border-radius:4px;
  padding:6px 9px; margin:4px 0; font-size:13px; }
.pair-text { border-left:3px solid #c9d3de; margin-left:14px; }
.pair { display:grid; grid-template-columns:1fr 1fr; gap:10px; border-top:1px solid var(--line);
  padding:8px 0; }
.pair .head { grid-column:1 / span 2; font-size:12.5px; color:var(--muted); }
.badge { display:inline-block; padding:0 7px; border-radius:9px; font-size:11.5px;
  background:#eef2f7; color:#334155; margin-right:4px; }
.badge.exact { background:#fdebd9; } .badge.near { background:#efe3ee; }
.badge.semantic { background:#e0f0ef; } .badge.kept { background:#e3ecf6; }
.mono { font-family:ui-monospace,"DejaVu Sans Mono",monospace; font-size:12px; overflow-wrap:anywhere; }
footer { color:var(--muted); font-size:12px; text-align:center; margin-top:26px; }
@media (max-width:900px) { .grid2, .pair { grid-template-columns:1fr; } }
@media print {
  @page { size:A4; margin:12mm; }
  body { background:#fff; font-size:11.5px; }
  header.top { background:#fff; color:#000; border-bottom:2px solid #000; padding:0 0 8px; }
  header.top .meta { color:#333; }
  nav.toc { display:none; }
  main, header.top .inner { max-width:none; padding:0; }
  section { border:none; padding:0; margin:14px 0; break-before:auto; }
  figure, .cluster, .pair, tr, .kpi { break-inside:avoid; }
  h2, h3 { break-after:avoid; }
  .grid2 { grid-template-columns:1fr 1fr; }
}
"""


def _key_figures(report: dict[str, Any]) -> Html:
    total = report["funnel"]["total"]
    percents = report["funnel"]["percent"]
    removed = total["exact_duplicates"] + total["near_duplicates"] + total["semantic_duplicates"]
    items = [
        ("Input rows", format_number(total["in"]), f"{total['in']:,} rows"),
        ("Rejected", format_number(total["rejected"]), percent(percents["rejected"])),
        (
            "Duplicates",
            format_number(removed),
            (percent(100 * removed / total["in"]) + " removed") if total["in"] else "—",
        ),
        ("Kept", format_number(total["kept"]), percent(percents["kept"]) + " of input"),
        (
            "Clusters",
            format_number(report["clusters"]["num_clusters"]),
            f"median size {report['clusters']['size_summary']['median']:g}",
        ),
        ("Sources", str(len(report["funnel"]["by_source"])), ""),
    ]
    return cards(items)


def render_page(report: dict[str, Any], sections: Sequence[tuple[str, str, str]]) -> str:
    """The complete HTML document.

    Args:
        report: The report's JSON document (for the header and key figures).
        sections: (anchor, title, html) of every section, in order.
    """
    dataset = report["dataset"]
    run = report["run"]
    model = (run.get("embedding") or {}).get("model", "unknown model")
    meta = (
        f"{dataset['path']} · created {run.get('created_at') or 'at an unknown time'} by "
        f"{run.get('created_by') or 'unknown'} · embeddings: {model}"
    )
    toc = "".join(f'<a href="#{esc(anchor)}">{esc(title)}</a>' for anchor, title, _ in sections)
    body = "".join(html for _, _, html in sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"{CSP_META}\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>Curation report · {esc(dataset['name'])}</title>\n"
        f"<style>{STYLE}</style>\n</head>\n<body>\n"
        f'<header class="top"><div class="inner"><h1>Curation report · {esc(dataset["name"])}'
        f'</h1><div class="meta">{esc(meta)}</div></div></header>\n'
        f"<main>{warnings_box(report['warnings'])}{_key_figures(report)}"
        f'<nav class="toc" aria-label="Sections">{toc}</nav>{body}'
        f"<footer>Generated by {esc(report['generated_by'])} at {esc(report['generated_at'])}"
        " · every number on this page is in report.json</footer></main>\n</body>\n</html>\n"
    )
