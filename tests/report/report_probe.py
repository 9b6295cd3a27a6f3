"""Test-only probe for the report page: a copy without the page's CSP, with a script that records what rendered."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

from batchcraft.report.html import CSP_META

PROBE = """<script>
window.__errors = [];
window.addEventListener("error", (e) => window.__errors.push(String(e.message || e.type)), true);
window.addEventListener("securitypolicyviolation", (e) => window.__errors.push("csp " + e.violatedDirective));
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const charts = Array.from(document.querySelectorAll("svg.chart"));
  const drawn = (svg) => {
    const box = svg.getBoundingClientRect();
    return box.width > 0 && box.height > 0 && svg.querySelector("rect, circle, polyline") !== null;
  };
  const result = {
    errors: window.__errors,
    pwned: window.__pwned || null,
    title: document.title,
    images: images.length,
    broken_images: images.filter((i) => !(i.complete && i.naturalWidth > 0)).map((i) => i.src),
    charts: charts.length,
    undrawn_charts: charts.filter((svg) => !drawn(svg)).length,
    resources: performance.getEntriesByType("resource").map((r) => r.name),
    sections: Array.from(document.querySelectorAll("section")).map((s) => s.id),
    scripts: document.querySelectorAll("script").length,
    body_text: document.body.innerText,
  };
  const pre = document.createElement("pre");
  pre.id = "probe-result";
  pre.textContent = JSON.stringify(result);
  document.body.appendChild(pre);
});
</script>"""


def probe_copy(page: Path, destination: Path) -> Path:
    """A test-only copy of ``page`` without its CSP and with the probe script injected first.

    Dropping the CSP means any script that escaped escaping would run, so the
    ``<script>`` test checks the escaping itself rather than the policy.
    """
    text = page.read_text(encoding="utf-8")
    assert CSP_META in text
    destination.write_text(text.replace(CSP_META, PROBE, 1), encoding="utf-8")
    return destination


def probe_result(dom: str) -> dict[str, Any]:
    """The probe's JSON result from a ``--dump-dom`` output."""
    match = re.search(r'<pre id="probe-result">(.*?)</pre>', dom, re.DOTALL)
    assert match, "the probe did not run (no probe-result in the dumped DOM)"
    return json.loads(html.unescape(match.group(1)))
