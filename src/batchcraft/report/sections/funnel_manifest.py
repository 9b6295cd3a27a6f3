"""The funnel section's check against the manifest: the funnel computed from the data,
compared field by field with manifest.json's accounting (JSON), every disagreement a
warning and a table row (HTML)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from batchcraft.report.charts.svg import esc
from batchcraft.report.html import Html, table

STAGE_KEYS = ("in", "kept", "duplicates", "rejected")
MAX_MISMATCHES_LISTED = 12  # as warnings; the table shows more
MAX_MISMATCHES_SHOWN = 50


class _Checker:
    """Collects manifest-versus-data disagreements."""

    def __init__(self) -> None:
        self.checked = 0
        self.mismatches: list[dict[str, Any]] = []

    def equal(self, field: str, manifest_value: Any, data_value: Any) -> None:
        self.checked += 1
        if manifest_value != data_value:
            self.mismatches.append({"field": field, "manifest": manifest_value, "data": data_value})

    def mapping(self, field: str, manifest_map: Any, data_map: dict[str, Any]) -> None:
        if not isinstance(manifest_map, dict):
            self.equal(field, manifest_map, "present")
            return
        for key in sorted(set(manifest_map) | set(data_map)):
            self.equal(f"{field}.{key}", manifest_map.get(key), data_map.get(key))


def reconcile(
    funnel: dict[str, Any],
    shard_rows: list[int],
    shard_kept: list[int],
    manifest: dict[str, Any],
    shards: list[Path],
) -> dict[str, Any]:
    """Compare the data's funnel with the manifest's accounting, field by field.

    Args:
        funnel: The funnel computed from the data.
        shard_rows: Rows per shard, in shard order.
        shard_kept: Kept rows per shard, in shard order.
        manifest: The manifest.
        shards: The shard paths, in shard order.

    Returns:
        ``ok``, the number of fields ``checked`` and the list of ``mismatches``
        (each with ``field``, ``manifest`` and ``data`` values).
    """
    check = _Checker()
    counts = manifest.get("counts") or {}
    check.equal("num_rows", manifest.get("num_rows"), sum(shard_rows))
    check.equal("num_kept", manifest.get("num_kept"), funnel["total"]["kept"])
    check.mapping("counts.total", counts.get("total"), funnel["total"])
    manifest_sources = counts.get("by_source") or {}
    for source in sorted(set(manifest_sources) | set(funnel["by_source"])):
        check.mapping(
            f"counts.by_source[{source!r}]",
            manifest_sources.get(source),
            funnel["by_source"].get(source, {}),
        )
    check.mapping(
        "counts.rejected_by_reason", counts.get("rejected_by_reason"), funnel["rejected_by_reason"]
    )
    _check_stages(check, counts.get("stages") or [], funnel["stages"])
    actual = {
        path.name: {"num_rows": count, "num_kept": kept}
        for path, count, kept in zip(shards, shard_rows, shard_kept, strict=True)
    }
    _check_shards(check, manifest.get("shards") or [], actual)
    return {"ok": not check.mismatches, "checked": check.checked, "mismatches": check.mismatches}


def _check_stages(
    check: _Checker, manifest_stages: list[Any], stages: list[dict[str, Any]]
) -> None:
    recorded = {stage.get("stage"): stage for stage in manifest_stages if isinstance(stage, dict)}
    for name, stage in recorded.items():
        parts = [stage.get(key) for key in STAGE_KEYS]
        if all(isinstance(value, int) for value in parts):
            total_in, kept, duplicates, rejected = (int(value or 0) for value in parts)
            field = f"counts.stages[{name!r}]: in = kept + duplicates + rejected"
            check.equal(field, total_in, kept + duplicates + rejected)
    for stage in stages:
        field = f"counts.stages[{stage['stage']!r}]"
        manifest_stage = recorded.get(stage["stage"])
        if manifest_stage is None:
            check.equal(field, None, "present")
            continue
        for key in STAGE_KEYS:
            check.equal(f"{field}.{key}", manifest_stage.get(key), stage[key])
        manifest_sources = manifest_stage.get("by_source") or {}
        for source, values in stage["by_source"].items():
            check.mapping(f"{field}.by_source[{source!r}]", manifest_sources.get(source), values)


def _check_shards(
    check: _Checker, manifest_shards: list[Any], actual: dict[str, dict[str, int]]
) -> None:
    recorded = {
        Path(str(shard.get("path"))).name: shard
        for shard in manifest_shards
        if isinstance(shard, dict)
    }
    for name in sorted(set(actual) | set(recorded)):
        manifest_shard = recorded.get(name)
        data_shard = actual.get(name)
        if manifest_shard is None or data_shard is None:
            check.equal(
                f"shards[{name!r}]",
                "listed" if manifest_shard else None,
                "present" if data_shard else None,
            )
            continue
        for key in ("num_rows", "num_kept"):
            check.equal(f"shards[{name!r}].{key}", manifest_shard.get(key), data_shard[key])


def accounting_warnings(reconciliation: dict[str, Any]) -> list[str]:
    """One warning per manifest-versus-data mismatch (the first few, then a count)."""
    mismatches = reconciliation["mismatches"]
    warnings = [_describe(m) for m in mismatches[:MAX_MISMATCHES_LISTED]]
    if len(mismatches) > MAX_MISMATCHES_LISTED:
        warnings.append(
            f"… and {len(mismatches) - MAX_MISMATCHES_LISTED} more manifest mismatches "
            "(all listed in the funnel section and in report.json)"
        )
    return warnings


def _describe(mismatch: dict[str, Any]) -> str:
    field, recorded, actual = mismatch["field"], mismatch["manifest"], mismatch["data"]
    if recorded is None:
        return f"manifest.json lacks {field}" + (
            "" if actual == "present" else f" (data: {actual!r})"
        )
    if actual is None:
        return f"manifest {field} = {recorded!r} has no counterpart in the data"
    return f"manifest {field} = {recorded!r} but the data gives {actual!r}"


def reconciliation_html(reconciliation: dict[str, Any]) -> Html:
    """A line saying every count agrees, or the table of the disagreements."""
    if reconciliation["ok"]:
        return Html(
            f'<p class="ok">✓ All {reconciliation["checked"]} counts agree with manifest.json.</p>'
        )
    mismatches = reconciliation["mismatches"]
    rows = [[m["field"], m["manifest"], m["data"]] for m in mismatches[:MAX_MISMATCHES_SHOWN]]
    note = f"✗ {len(mismatches)} of {reconciliation['checked']} counts disagree with manifest.json"
    return Html(
        f'<p class="bad">{esc(note)} (the numbers above are computed from the data).</p>'
        + table(["field", "manifest.json", "data"], rows, numeric=(1, 2))
    )
