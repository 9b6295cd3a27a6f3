"""Unit tests of the report's building blocks: sampling, scales, SVG escaping, PNG reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from report_png import read_png, write_png

from batchcraft.dataset.hashing import string_hashes
from batchcraft.report.charts.bars import Series, bar_chart
from batchcraft.report.charts.continuous import scatter
from batchcraft.report.charts.svg import format_number, log_ticks, nice_ticks
from batchcraft.report.html import Html, table
from batchcraft.report.idhash import HashIndex
from batchcraft.report.sampling import GroupedSample, bottom_k


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("per_group", [1, 3])
def test_streamed_sample_equals_the_sample_of_all_rows(seed: int, per_group: int) -> None:
    rng = np.random.default_rng(seed)
    groups, keys = rng.integers(0, 7, 500), rng.random(500)
    ids = np.array([f"row-{i}" for i in range(500)], dtype=object)
    sample = GroupedSample(per_group)
    for start in range(0, 500, 37):
        part = slice(start, start + 37)
        sample.offer(groups[part], keys[part], {"id": pa.array(ids[part].tolist())})
    expected = bottom_k(groups, keys, per_group)
    assert [row["id"] for row in sample.rows()] == ids[expected].tolist()
    counts = np.bincount([row["group"] for row in sample.rows()], minlength=7)
    assert (counts == np.minimum(np.bincount(groups, minlength=7), per_group)).all()


def test_ticks_are_round_and_cover_the_range() -> None:
    assert nice_ticks(0, 226) == [0, 50, 100, 150, 200]
    assert nice_ticks(0.6, 1.0) == pytest.approx([0.6, 0.7, 0.8, 0.9, 1.0])
    assert log_ticks(0.6, 200) == [1, 2, 5, 10, 20, 50, 100, 200]
    assert log_ticks(0.6, 1e6) == [1, 10, 100, 1e3, 1e4, 1e5, 1e6]
    assert [format_number(v) for v in (0, 950, 12_345, 4.5e6, 0.951)] == [
        "0",
        "950",
        "12.3k",
        "4.5M",
        "0.951",
    ]


def test_chart_labels_and_table_cells_are_escaped() -> None:
    label = "<script>alert(1)</script>"
    svg = bar_chart([label], [Series("a&b", [3])], title="t<i>", log=True)
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "<i>" not in svg
    svg = scatter([0.1], [0.2], tips=[label], title="map")
    assert "<script>" not in svg
    html = table(["h<"], [[label, Html("<b>trusted</b>"), 1234567]])
    assert "&lt;script&gt;" in html and "<b>trusted</b>" in html and "1,234,567" in html


def test_png_reader_round_trips(tmp_path: Path) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (13, 7, 3), dtype=np.uint8)
    write_png(tmp_path / "a.png", pixels)
    assert (read_png(tmp_path / "a.png") == pixels).all()


def test_hash_index_finds_exactly_the_ids_of_the_set() -> None:
    members = pa.array(
        ["a", "", "row-1", "row-10", "ü-ñ", "row-01"] + [f"id-{i}" for i in range(1000)]
    )
    index = HashIndex(members)
    probes = pa.array(["row-10", None, "", "zzz", "row-1", "id-999", "id-1000", "ü-ñ"]).slice(0)
    found, positions = index.lookup(probes)
    assert found.tolist() == [True, False, True, False, True, True, False, True]
    assert [members[int(p)].as_py() for p in positions[found]] == [
        "row-10",
        "",
        "row-1",
        "id-999",
        "ü-ñ",
    ]
    sliced = pa.array(["x", "row-01", "a"]).slice(1, 2)
    assert index.lookup(sliced)[0].tolist() == [True, True]
    assert len(np.unique(string_hashes(members))) == len(members)
