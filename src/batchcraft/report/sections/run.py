"""The run section: model, parameters, timings and input fingerprints from the manifest."""

from __future__ import annotations

from typing import Any


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


def run_section(manifest: dict[str, Any]) -> dict[str, Any]:
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
