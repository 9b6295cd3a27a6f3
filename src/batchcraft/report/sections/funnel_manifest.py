"""The row funnel (input → rejected → duplicates → kept) and its check against the manifest.

The funnel is computed from the data itself (data/ and rejects/), then compared field
by field with the manifest's accounting; every disagreement becomes a visible warning.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from batchcraft.report.sections.funnel_rows import RejectTally, RowTally

FUNNEL_KEYS = (
    "in",
    "rejected",
    "exact_duplicates",
    "near_duplicates",
    "semantic_duplicates",
    "kept",
)
STAGE_KEYS = ("in", "kept", "duplicates", "rejected")


def _source_funnel(counts: dict[str, int], rejected: int) -> dict[str, int]:
    funnel = {
        "in": counts["rows"] + rejected,
        "rejected": rejected,
        "exact_duplicates": counts["exact"],
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
    return [
        {
            "stage": "validate",
            "in": funnel["in"],
            "kept": valid,
            "duplicates": 0,
            "rejected": funnel["rejected"],
        },
        {
            "stage": "exact_dedup",
            "in": valid,
            "kept": unique,
            "duplicates": funnel["exact_duplicates"],
            "rejected": 0,
        },
        {
            "stage": "semantic_dedup",
            "in": unique,
            "kept": unique - semantic,
            "duplicates": semantic,
            "rejected": 0,
        },
    ]


def build_funnel(rows: RowTally, rejects: RejectTally) -> dict[str, Any]:
    """The funnel overall, per source and per stage, as computed from the data."""
    rejected_by_source = rejects.by_source()
    sources = sorted(set(rows.by_source) | set(rejected_by_source))
    empty = {"rows": 0, "kept": 0, "exact": 0, "near": 0, "semantic": 0, "removed_other": 0}
    by_source = {
        source: _source_funnel(rows.by_source.get(source, empty), rejected_by_source.get(source, 0))
        for source in sources
    }
    total: dict[str, int] = {}
    for funnel in by_source.values():
        for key, value in funnel.items():
            total[key] = total.get(key, 0) + value
    for key in FUNNEL_KEYS:
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
    funnel: dict[str, Any], rows: RowTally, manifest: dict[str, Any], shards: list[Path]
) -> dict[str, Any]:
    """Compare the data's funnel with the manifest's accounting, field by field.

    Returns:
        ``ok``, the number of fields ``checked`` and the list of ``mismatches``
        (each with ``field``, ``manifest`` and ``data`` values).
    """
    check = _Checker()
    counts = manifest.get("counts") or {}
    check.equal("num_rows", manifest.get("num_rows"), sum(rows.shard_rows))
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
    _check_shards(check, manifest.get("shards") or [], rows, shards)
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
    check: _Checker, manifest_shards: list[Any], rows: RowTally, shards: list[Path]
) -> None:
    actual = {
        path.name: {"num_rows": count, "num_kept": kept}
        for path, count, kept in zip(shards, rows.shard_rows, rows.shard_kept, strict=True)
    }
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


def _percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0
