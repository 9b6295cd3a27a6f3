"""Fixtures of the report tests: a small curated dataset, its report, headless Chromium."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from report_dataset import FixtureDataset, make_dataset, write_provenance

from batchcraft.report import write_report
from batchcraft.report.html import CSP_META

REPO = Path(__file__).resolve().parents[2]
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
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


@pytest.fixture
def dataset(tmp_path: Path) -> FixtureDataset:
    """A fresh contract-conforming dataset with a provenance log."""
    fixture = make_dataset(tmp_path / "curated")
    write_provenance(fixture.path / "provenance", fixture)
    return fixture


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory) -> tuple[FixtureDataset, dict[str, Any]]:
    """A dataset (shared by a module's tests, read-only) and its report.json."""
    fixture = make_dataset(tmp_path_factory.mktemp("reported") / "curated")
    write_provenance(fixture.path / "provenance", fixture)
    summary = write_report(fixture.path)
    return fixture, json.loads(summary.json_path.read_text())


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of the chromium binary, installed by scripts/ensure_chromium.sh when missing."""
    found = shutil.which("chromium")
    if found is None:
        script = REPO / "scripts" / "ensure_chromium.sh"
        result = subprocess.run(["sh", str(script)], capture_output=True, text=True, timeout=1200)
        found = shutil.which("chromium")
        if found is None:
            pytest.skip(f"chromium missing and not installable here: {result.stderr[-400:]}")
    return found


@pytest.fixture
def run_chromium(chromium: str, tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run headless chromium on a file with extra flags; returns the completed process."""

    def run(page: Path, *flags: str) -> subprocess.CompletedProcess[str]:
        profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
        command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *flags, page.as_uri()]
        return subprocess.run(command, capture_output=True, text=True, timeout=180, check=True)

    return run


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
