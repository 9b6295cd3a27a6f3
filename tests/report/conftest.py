"""Fixtures of the report tests: a small curated dataset, its report, headless Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from report_dataset import FixtureDataset, make_dataset, write_provenance

from batchcraft.report import write_report

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
