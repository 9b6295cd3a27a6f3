"""Human-readable warnings about a dataset whose data, manifest or provenance disagree."""

from __future__ import annotations

from typing import Any

MAX_MISMATCHES_LISTED = 12


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


def data_warnings(
    anomalies: dict[str, int],
    clusters: dict[str, Any],
    duplicates: dict[str, Any],
    manifest: dict[str, Any],
    num_shards: int,
) -> list[str]:
    """Warnings about rows that break the dataset contract."""
    warnings = [f"{count:,} rows: {name}" for name, count in anomalies.items() if count]
    if num_shards == 0:
        warnings.append("data/ holds no part-*.parquet shard")
    if clusters["rows_out_of_range"]:
        warnings.append(
            f"{clusters['rows_out_of_range']:,} rows have a null cluster or one outside "
            f"[0, {clusters['num_clusters']})"
        )
    if clusters["map"] is None:
        warnings.append("centroids.npy is missing: no centroid map")
    recorded = (manifest.get("clustering") or {}).get("num_clusters")
    if recorded is not None and recorded != clusters["num_clusters"]:
        warnings.append(
            f"manifest clustering.num_clusters = {recorded} but centroids.npy has "
            f"{clusters['num_clusters']} rows"
        )
    if duplicates["missing_max_sim"]:
        warnings.append(f"{duplicates['missing_max_sim']:,} compared rows have a null max_sim")
    return warnings


def serving_warnings(serving: dict[str, Any] | None) -> list[str]:
    """Warnings about the provenance log: malformed lines, unknown or removed rows served."""
    if serving is None:
        return []
    warnings = []
    if serving["malformed_lines"]:
        warnings.append(
            f"provenance: {serving['malformed_lines']:,} malformed lines skipped "
            f"(first: {serving['first_malformed']})"
        )
    if serving["unknown_id_examples"]:
        warnings.append(
            f"provenance: {serving['unknown_id_examples']:,} served examples have ids that are "
            "not in this dataset (a log of another dataset?)"
        )
    if serving["served_not_kept_examples"]:
        warnings.append(
            f"provenance: {serving['served_not_kept_examples']:,} served examples are rows "
            "with keep = false (removed duplicates were trained on)"
        )
    return warnings
