"""report.html in headless Chromium: no console errors, charts drawn, not blank, text escaped."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from report_dataset import PAYLOAD, FixtureDataset
from report_png import read_png
from report_probe import probe_copy, probe_result

from batchcraft.report import write_report
from batchcraft.report.charts.svg import esc

RunChromium = Callable[..., subprocess.CompletedProcess[str]]
SECTIONS = ["funnel", "clusters", "duplicates", "concepts", "run", "serving"]


@pytest.fixture
def page(dataset: FixtureDataset) -> Path:
    return write_report(dataset.path).html_path


def test_page_is_self_contained(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//|file:)""", text)
    assert "url(" not in text and "@import" not in text
    assert "<script" not in text.replace(esc("<script"), "")  # only escaped occurrences


def test_page_renders_without_console_messages_and_is_not_blank(
    page: Path, run_chromium: RunChromium, tmp_path: Path
) -> None:
    screenshot = tmp_path / "report.png"
    process = run_chromium(
        page,
        "--enable-logging=stderr",
        "--v=0",
        f"--screenshot={screenshot}",
        "--window-size=1280,2000",
    )
    console = [
        line for line in process.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line
    ]
    assert console == []  # no script errors, no blocked request, no CSP violation
    pixels = read_png(screenshot)[:, :, :3].astype(np.int16)
    assert pixels.shape[:2] == (2000, 1280)
    assert pixels.std() > 20  # not a blank page
    colours = {tuple(p) for p in pixels[::7, ::7].reshape(-1, 3)}
    assert len(colours) > 50  # text, charts and panels, not a single fill
    header = pixels[:60, :, :].reshape(-1, 3).mean(axis=0)
    assert header.max() < 80  # the dark header band is drawn at the top
    body_rows = (np.abs(pixels[100:] - pixels[100:].mean(axis=(0, 1))).sum(axis=2) > 60).any(axis=1)
    assert body_rows.mean() > 0.3  # content runs down the page, not just a header


def test_every_chart_draws_and_corpus_markup_stays_text(
    page: Path, run_chromium: RunChromium, tmp_path: Path
) -> None:
    copy = probe_copy(page, tmp_path / "probe.html")
    process = run_chromium(copy, "--virtual-time-budget=10000", "--dump-dom")
    result = probe_result(process.stdout)
    assert result["errors"] == []
    assert result["broken_images"] == []
    assert result["charts"] >= 14 and result["undrawn_charts"] == 0
    assert result["resources"] == []  # no request of any kind
    assert result["sections"] == SECTIONS
    assert result["pwned"] is None and "PWNED" not in result["title"]
    assert result["scripts"] == 1  # only the probe itself
    assert PAYLOAD in result["body_text"]  # the document's markup is shown as text


def test_payload_is_escaped_in_the_html_source(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert PAYLOAD not in text
    assert esc(PAYLOAD) in text
