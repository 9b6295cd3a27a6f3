"""The funnel section: every input row's fate (rejected, exact / MinHash / near / semantic
duplicate, kept), overall, per source and per stage, computed from ``data/`` and ``rejects/``.

Its parts sit beside it: `funnel_rows` (the accumulator over ``data/``),
`funnel_rejects` (the rejected rows) and `funnel_manifest` (the funnel checked field
by field against manifest.json).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from batchcraft.report.charts.bars import HALF_WIDTH, OUTCOME_COLORS, Series, bar_chart
from batchcraft.report.html import Html, figure, grid, percent, section, table
from batchcraft.report.inputs import ReportInputs
from batchcraft.report.sections.funnel_against import against_html, against_json
from batchcraft.report.sections.funnel_manifest import (
    accounting_warnings,
    reconcile,
    reconciliation_html,
)
from batchcraft.report.sections.funnel_rejects import RejectTally, rejects_html, scan_rejects
from batchcraft.report.sections.funnel_rows import SOURCE_KEYS, RowCounts, RowTally

MINHASH_KEY = "minhash_duplicates"  # only in datasets curated since MinHash near dedup
FUNNEL_KEYS = (
    "in",
    "rejected",
    "exact_duplicates",
    MINHASH_KEY,
    "near_duplicates",
    "semantic_duplicates",
    "kept",
)
OUTCOMES = (  # funnel key, label (and colour) in the outcome chart
    ("rejected", "rejected"),
    ("exact_duplicates", "exact"),
    (MINHASH_KEY, "minhash"),
    ("near_duplicates", "near"),
    ("semantic_duplicates", "semantic"),
    ("kept", "kept"),
)
COLORS = {"minhash": "#59a14f", **OUTCOME_COLORS}
HEADERS = {  # funnel key -> column of the per-source table
    "in": "input",
    "rejected": "rejected",
    "exact_duplicates": "exact dup.",
    MINHASH_KEY: "MinHash dup.",
    "near_duplicates": "near dup.",
    "semantic_duplicates": "semantic dup.",
    "kept": "kept",
}
STAGE_LABELS = {
    "validate": "after validation",
    "exact_dedup": "after exact dedup",
    "minhash_dedup": "after MinHash dedup",
    "semantic_dedup": "after semantic dedup (kept)",
}
LEAD = (
    "Every input row ends in exactly one bucket: rejected by validation, removed as an exact, "
    "MinHash, near or semantic duplicate, or kept. Counts come from data/ and rejects/ and "
    "are checked field by field against the manifest's accounting."
)


class FunnelSection:
    """Where every input row went, checked against the manifest's accounting."""

    name = "funnel"
    title = "Funnel"

    def accumulator(self, inputs: ReportInputs) -> RowCounts:
        """Row counts per source, outcome and shard."""
        return RowCounts(len(inputs.shards))

    def to_json(
        self, stats: RowCounts, inputs: ReportInputs, report: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The funnel from the data, its check against the manifest, anomalies, rejects."""
        tally = stats.result()
        rejects = scan_rejects(inputs.rejects())
        funnel = build_funnel(tally, rejects, has_minhash_stage(tally, inputs.manifest))
        funnel["reconciliation"] = reconcile(
            funnel, tally.shard_rows, tally.shard_kept, inputs.manifest, inputs.shards
        )
        funnel["anomalies"] = tally.anomalies
        funnel["reject_examples"] = rejects.examples_json()
        against = against_json(inputs.manifest, inputs.shards)
        if against is not None:  # a dataset curated against earlier ones
            funnel["against_previous"] = against
        return funnel

    def warnings(self, data: dict[str, Any], inputs: ReportInputs) -> list[str]:
        """Manifest mismatches, rows that break the contract, a dataset without shards."""
        warnings = accounting_warnings(data["reconciliation"])
        warnings += [
            f"{count:,} rows: {name}" for name, count in data["anomalies"].items() if count
        ]
        if not inputs.shards:
            warnings.append("data/ holds no part-*.parquet shard")
        return warnings

    def to_html(self, data: dict[str, Any]) -> Html:
        """Remaining rows per stage, outcome per source, the manifest check, rejects."""
        return funnel_html(data)


def has_minhash_stage(tally: RowTally, manifest: Mapping[str, Any]) -> bool:
    """Whether the funnel has a MinHash stage: the manifest counts one (every dataset
    curated since the stage exists, even with it off) or the data holds its rows."""
    total = (manifest.get("counts") or {}).get("total")
    recorded = isinstance(total, dict) and MINHASH_KEY in total
    return recorded or any(counts["minhash"] for counts in tally.by_source.values())


def _source_funnel(counts: dict[str, int], rejected: int, with_minhash: bool) -> dict[str, int]:
    funnel = {
        "in": counts["rows"] + rejected,
        "rejected": rejected,
        "exact_duplicates": counts["exact"],
        **({MINHASH_KEY: counts["minhash"]} if with_minhash else {}),
        "near_duplicates": counts["near"],
        "semantic_duplicates": counts["semantic"],
        "kept": counts["kept"],
    }
    if counts["removed_other"]:
        funnel["removed_other"] = counts["removed_other"]
    return funnel


def _stages(funnel: dict[str, int]) -> list[dict[str, Any]]:
    valid = funnel["in"] - funnel["rejected"]
    unique = valid - funnel["exact_duplicates"]
    semantic = funnel["near_duplicates"] + funnel["semantic_duplicates"]
    stages = [
        _stage("validate", funnel["in"], 0, funnel["rejected"]),
        _stage("exact_dedup", valid, funnel["exact_duplicates"]),
    ]
    if MINHASH_KEY in funnel:
        stages.append(_stage("minhash_dedup", unique, funnel[MINHASH_KEY]))
        unique -= funnel[MINHASH_KEY]
    return [*stages, _stage("semantic_dedup", unique, semantic)]


def _stage(name: str, rows_in: int, duplicates: int, rejected: int = 0) -> dict[str, Any]:
    return {
        "stage": name,
        "in": rows_in,
        "kept": rows_in - duplicates - rejected,
        "duplicates": duplicates,
        "rejected": rejected,
    }


def build_funnel(
    rows: RowTally, rejects: RejectTally, with_minhash: bool = False
) -> dict[str, Any]:
    """The funnel overall, per source and per stage, as computed from the data (with the
    MinHash stage and its ``minhash_duplicates`` when ``with_minhash``)."""
    rejected_by_source = rejects.by_source()
    sources = sorted(set(rows.by_source) | set(rejected_by_source))
    empty = dict.fromkeys(SOURCE_KEYS, 0)
    by_source = {
        source: _source_funnel(
            rows.by_source.get(source, empty), rejected_by_source.get(source, 0), with_minhash
        )
        for source in sources
    }
    total: dict[str, int] = {}
    for funnel in by_source.values():
        for key, value in funnel.items():
            total[key] = total.get(key, 0) + value
    for key in FUNNEL_KEYS:
        if key != MINHASH_KEY or with_minhash:
            total.setdefault(key, 0)
    stages = _stages(total)
    for stage in stages:
        stage["by_source"] = {
            source: {key: value for key, value in s.items() if key != "stage"}
            for source in sources
            for s in _stages(by_source[source])
            if s["stage"] == stage["stage"]
        }
    return {
        "total": total,
        "percent": {key: _percent(value, total["in"]) for key, value in total.items()},
        "by_source": by_source,
        "rejected_by_reason": rejects.by_reason(),
        "stages": stages,
    }


def _percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


def funnel_html(funnel: dict[str, Any]) -> Html:
    """Funnel section: remaining rows per stage, outcome per source, rejects by reason."""
    sources = [*funnel["by_source"], "all sources"]
    rows = [*funnel["by_source"].values(), funnel["total"]]
    keys = [key for key in FUNNEL_KEYS if key in funnel["total"]]
    charts = grid(
        figure(
            _remaining_chart(funnel["stages"]),
            "Each stage removes rows; the last bar is the curated dataset.",
        ),
        figure(
            _outcome_chart(sources, rows, keys),
            "Rejected (red), exact / MinHash / near / semantic duplicates, kept (blue).",
        ),
    )
    body = [
        [name, *(r[key] for key in keys), _kept_percent(r)]
        for name, r in zip(sources, rows, strict=True)
    ]
    source_table = table(
        ["source", *(HEADERS[key] for key in keys), "kept %"],
        body,
        numeric=range(1, len(keys) + 2),
        row_classes=[""] * (len(body) - 1) + ["total"],
    )
    return section(
        FunnelSection.name,
        FunnelSection.title,
        LEAD,
        charts,
        source_table,
        reconciliation_html(funnel["reconciliation"]),
        against_html(funnel.get("against_previous")),
        rejects_html(funnel),
    )


def _kept_percent(row: dict[str, int]) -> str:
    return percent(100 * row["kept"] / row["in"] if row["in"] else 0)


def _remaining_chart(stages: list[dict[str, Any]]) -> str:
    return bar_chart(
        ["input", *(STAGE_LABELS[s["stage"]] for s in stages)],
        [Series("rows", [stages[0]["in"], *(s["kept"] for s in stages)], COLORS["kept"])],
        title="Rows remaining after each stage",
        width=HALF_WIDTH,
        annotate=True,
        value_label="rows",
    )


def _outcome_chart(sources: list[str], rows: list[dict[str, int]], keys: list[str]) -> str:
    return bar_chart(
        sources,
        [
            Series(label, [r[key] / r["in"] if r["in"] else 0.0 for r in rows], COLORS[label])
            for key, label in OUTCOMES
            if key in keys
        ],
        title="Outcome of every input row, per source",
        width=HALF_WIDTH,
        stacked=True,
        domain_max=1.0,
        value_format=lambda v: f"{100 * v:.0f} %",
        value_label="share of the source's input rows",
    )
