"""The run section: model, parameters, timings and input fingerprints from the manifest."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from batchcraft.report.charts.bars import HALF_WIDTH, Series, bar_chart
from batchcraft.report.charts.svg import esc
from batchcraft.report.html import Html, figure, grid, heading, section, table
from batchcraft.report.inputs import ReportInputs

RUN_FACTS = (
    ("embedding model", ("embedding", "model")),
    ("embedding dim", ("embedding", "dim")),
    ("embedding precision", ("embedding", "precision")),
    ("normalized", ("embedding", "normalized")),
    ("clusters", ("clustering", "num_clusters")),
    ("k-means sample size", ("clustering", "sample_size")),
    ("eps", ("semantic_dedup", "eps")),
    ("threshold (1 − eps)", ("semantic_dedup", "threshold")),
    ("near threshold", ("semantic_dedup", "near_threshold")),
    ("keep policy", ("semantic_dedup", "keep_policy")),
    ("second cluster compared", ("semantic_dedup", "second_cluster")),
    ("paired data", ("has_pairs",)),
    ("created by", ("created_by",)),
    ("created at", ("created_at",)),
)


class RunSection:
    """How the dataset was made, straight from the manifest (nothing to count in the rows)."""

    name = "run"
    title = "Run"

    def accumulator(self, inputs: ReportInputs) -> None:
        """The run section reads no rows."""
        return None

    def to_json(
        self, stats: None, inputs: ReportInputs, report: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The manifest's model, settings, timings, inputs and flattened parameters."""
        return run_json(inputs.manifest)

    def warnings(self, data: dict[str, Any], inputs: ReportInputs) -> list[str]:
        """The run section finds no problems (the manifest is shown as recorded)."""
        return []

    def to_html(self, data: dict[str, Any]) -> Html:
        """Model and dedup settings, stage timings, inputs and all parameters."""
        return run_html(data)


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dictionaries as one level of dotted keys (lists and scalars kept as values)."""
    if not isinstance(value, dict):
        return {prefix: value} if prefix else {}
    flat: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(item, dict) and item:
            flat.update(flatten(item, name))
        else:
            flat[name] = item
    return flat


def _timings(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    timings = manifest.get("timings") or {}
    return [
        {"stage": str(stage), "seconds": round(float(seconds), 3)}
        for stage, seconds in timings.items()
        if isinstance(seconds, int | float) and not isinstance(seconds, bool)
    ]


def _inputs(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    keys = ("path", "format", "source", "bytes", "sha256")
    return [
        {key: item.get(key) for key in keys}
        for item in manifest.get("inputs") or []
        if isinstance(item, dict)
    ]


def run_json(manifest: dict[str, Any]) -> dict[str, Any]:
    """The report's run section, straight from the manifest."""
    timings = _timings(manifest)
    stages = [row for row in timings if row["stage"] != "total"]
    recorded_total = [row["seconds"] for row in timings if row["stage"] == "total"]
    total = recorded_total[0] if recorded_total else sum(row["seconds"] for row in stages)
    return {
        "created_by": manifest.get("created_by"),
        "created_at": manifest.get("created_at"),
        "has_pairs": manifest.get("has_pairs"),
        "embedding": manifest.get("embedding") or {},
        "clustering": manifest.get("clustering") or {},
        "semantic_dedup": manifest.get("semantic_dedup") or {},
        "timings": stages,
        "total_seconds": round(total, 3),
        "inputs": _inputs(manifest),
        "parameters": flatten(manifest.get("parameters") or {}),
    }


def _lookup(run: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = run
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def run_html(run: dict[str, Any]) -> Html:
    """Run section: model and dedup settings, stage timings, inputs and all parameters."""
    facts = table(["setting", "value"], [[name, _lookup(run, path)] for name, path in RUN_FACTS])
    inputs = [
        [
            item["path"],
            item["format"],
            item["source"],
            item["bytes"],
            Html(f'<span class="mono">{esc(item["sha256"])}</span>'),
        ]
        for item in run["inputs"]
    ]
    parameters = [
        [Html(f'<span class="mono">{esc(k)}</span>'), _plain(v)]
        for k, v in run["parameters"].items()
    ]
    return section(
        RunSection.name,
        RunSection.title,
        "How this dataset was made: model, settings, time spent and the exact inputs.",
        grid(facts, _timing_chart(run)),
        heading("Inputs"),
        table(["path", "format", "source", "bytes", "sha256"], inputs, numeric=(3,)),
        heading("All parameters"),
        table(["parameter", "value"], parameters),
    )


def _timing_chart(run: dict[str, Any]) -> Html:
    timings = run["timings"]
    if not timings:
        return Html("<p class='muted'>No timings recorded.</p>")
    chart = bar_chart(
        [t["stage"] for t in timings],
        [Series("seconds", [t["seconds"] for t in timings])],
        title="Seconds per stage",
        width=HALF_WIDTH,
        annotate=True,
        value_label="seconds",
    )
    caption = f"Wall-clock seconds per stage; {run['total_seconds']:,.1f} s in total."
    return figure(chart, caption)


def _plain(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)
