"""The writer follows the section registry: its order, and nothing but its entries."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pyarrow as pa
import pytest
from report_dataset import FixtureDataset

from batchcraft.report import build_report, writer
from batchcraft.report.html import Html, section
from batchcraft.report.inputs import ReportInputs
from batchcraft.report.sections import SECTIONS


def test_report_json_and_page_follow_the_registry_order(dataset: FixtureDataset) -> None:
    report, page = build_report(dataset.path)
    names = [entry.name for entry in SECTIONS]
    assert len(set(names)) == len(names)
    assert [key for key in report if key in names] == names
    assert re.findall(r'<section id="([a-z]+)">', page) == names
    toc = re.findall(r'<a href="#([a-z]+)">([^<]+)</a>', page)
    assert toc == [(entry.name, entry.title) for entry in SECTIONS]


class _RowTotal:
    columns = ("id",)

    def __init__(self) -> None:
        self.rows = 0

    def update(self, batch: pa.RecordBatch, shard: int) -> None:
        self.rows += batch.num_rows


class _RowsSection:
    name = "rows"
    title = "Rows"

    def accumulator(self, inputs: ReportInputs) -> _RowTotal:
        return _RowTotal()

    def to_json(
        self, stats: _RowTotal, inputs: ReportInputs, report: Mapping[str, Any]
    ) -> dict[str, Any]:
        return {"rows": stats.rows, "kept": report["funnel"]["total"]["kept"]}

    def warnings(self, data: dict[str, Any], inputs: ReportInputs) -> list[str]:
        return [f"{data['rows']} rows counted by the new section"]

    def to_html(self, data: dict[str, Any]) -> Html:
        return section(self.name, self.title, f"{data['rows']} rows, {data['kept']} kept.")


def test_a_new_section_needs_only_its_registry_entry(
    dataset: FixtureDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer, "SECTIONS", (*SECTIONS, _RowsSection()))
    report, page = build_report(dataset.path)
    rows, kept = len(dataset.rows), int(dataset.rows.keep.sum())
    assert list(report)[-1] == "rows"
    assert report["rows"] == {"rows": rows, "kept": kept}
    assert report["warnings"] == [f"{rows} rows counted by the new section"]
    assert f'<section id="rows"><h2>Rows</h2><p class="lead">{rows} rows, {kept} kept.' in page
    assert '<a href="#rows">Rows</a>' in page
