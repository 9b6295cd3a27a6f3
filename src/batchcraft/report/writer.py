"""``write_report``: scan a curated dataset once and write report.json and report.html."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from batchcraft import __version__
from batchcraft._files import atomic_write, jsonable
from batchcraft.dataset import layout
from batchcraft.dataset.manifest import (
    dedup_settings,
    list_rejects,
    list_shards,
    load_centroids,
    read_manifest,
)
from batchcraft.errors import DatasetError
from batchcraft.report import checks
from batchcraft.report.fetch import fetch_rows, truncate
from batchcraft.report.page import render_page
from batchcraft.report.provenance import ProvenanceLog, read_provenance
from batchcraft.report.render_clusters import clusters_html, concepts_html
from batchcraft.report.render_duplicates import duplicates_html
from batchcraft.report.render_run import run_html, serving_html
from batchcraft.report.scan import DEFAULT_BATCH_SIZE, Accumulator, scan
from batchcraft.report.sections.clusters import ClusterStats, cluster_section
from batchcraft.report.sections.concepts import ConceptStats, concept_section
from batchcraft.report.sections.duplicates import DuplicateStats, duplicate_section
from batchcraft.report.sections.funnel import funnel_html
from batchcraft.report.sections.funnel_manifest import build_funnel, reconcile
from batchcraft.report.sections.funnel_rows import RowCounts, scan_rejects
from batchcraft.report.sections.run import run_section
from batchcraft.report.sections.serving import ExposureStats, serving_section

REPORT_VERSION = 1
MANIFEST_KEYS = ("num_rows", "num_kept", "counts")  # what the funnel reconciles against


@dataclass(frozen=True)
class ReportSummary:
    """What ``write_report`` wrote and found.

    Attributes:
        html_path: The written report.html.
        json_path: The written report.json.
        num_input_rows: Input rows (kept + duplicates + rejected).
        num_kept: Kept rows.
        warnings: Problems found (data versus manifest, contract breaks, provenance).
        has_serving: Whether a provenance log was found and reported on.
    """

    html_path: Path
    json_path: Path
    num_input_rows: int
    num_kept: int
    warnings: tuple[str, ...]
    has_serving: bool


def _num_clusters(manifest: dict[str, Any], centroids: np.ndarray | None) -> int:
    if centroids is not None:
        return int(centroids.shape[0])
    recorded = (manifest.get("clustering") or {}).get("num_clusters")
    if not isinstance(recorded, int) or recorded < 0:
        raise DatasetError("centroids.npy is missing and manifest clustering.num_clusters is unset")
    return recorded


def _shards(dataset_dir: Path, manifest: dict[str, Any]) -> list[Path]:
    data_dir = layout.data_dir(dataset_dir)
    if not data_dir.is_dir():
        raise DatasetError(f"{data_dir} not found: a curated dataset keeps its rows there")
    return [shard.path for shard in list_shards(dataset_dir, manifest)]


def _provenance(dataset_dir: Path, provenance_dir: Path | None) -> ProvenanceLog | None:
    if provenance_dir is None:
        return read_provenance(dataset_dir / "provenance")
    log = read_provenance(provenance_dir)
    if log is None:
        raise DatasetError(f"no provenance log (*.jsonl files) under {provenance_dir}")
    return log


def build_report(
    dataset_dir: Path, provenance_dir: Path | None = None, batch_size: int = DEFAULT_BATCH_SIZE
) -> tuple[dict[str, Any], str]:
    """Compute the report of ``dataset_dir`` in one streaming pass.

    Returns:
        The JSON document and the HTML page.
    """
    manifest = read_manifest(dataset_dir, required=MANIFEST_KEYS)
    shards = _shards(dataset_dir, manifest)
    centroids = load_centroids(dataset_dir)
    num_clusters = _num_clusters(manifest, centroids)
    log = _provenance(dataset_dir, provenance_dir)
    rows = RowCounts(len(shards))
    cluster_stats = ClusterStats(num_clusters)
    duplicate_stats = DuplicateStats(dedup_settings(manifest))
    concept_stats = ConceptStats()
    exposure = ExposureStats(log, num_clusters) if log else None
    accumulators: list[Accumulator] = [rows, cluster_stats, duplicate_stats, concept_stats]
    if exposure is not None:
        accumulators.append(exposure)
    scan(shards, accumulators, batch_size)
    rejects = scan_rejects(list_rejects(dataset_dir))
    text_columns = ["text", "source"] + (["pair_text"] if manifest.get("has_pairs") else [])
    fetched = fetch_rows(shards, cluster_stats.sample_ids(), text_columns)
    # Embeddings only for duplicate pairs (their similarity is recomputed from them).
    fetched |= fetch_rows(shards, duplicate_stats.sample_ids(), [*text_columns, "embedding"])

    tally = rows.result()
    funnel = build_funnel(tally, rejects)
    funnel["reconciliation"] = reconcile(funnel, tally, manifest, shards)
    funnel["anomalies"] = tally.anomalies
    funnel["reject_examples"] = {
        reason: [example | {"raw": truncate(example["raw"], 240)} for example in examples]
        for reason, examples in rejects.examples.items()
    }
    total = funnel["total"]
    removed_semantic = total["near_duplicates"] + total["semantic_duplicates"]
    report: dict[str, Any] = {
        "report_version": REPORT_VERSION,
        "generated_by": f"batchcraft {__version__}",
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "dataset": {
            "path": str(dataset_dir),
            "name": dataset_dir.resolve().name,
            "schema_version": manifest["schema_version"],
            "num_shards": len(shards),
        },
        "warnings": [],
        "funnel": funnel,
        "clusters": cluster_section(cluster_stats, centroids, fetched),
        "duplicates": duplicate_section(duplicate_stats, fetched, removed_semantic),
        "concepts": concept_section(concept_stats, total["kept"]),
        "run": run_section(manifest),
        "serving": _serving(log, exposure, funnel, cluster_stats, concept_stats),
    }
    report["warnings"] = (
        checks.accounting_warnings(funnel["reconciliation"])
        + checks.data_warnings(
            tally.anomalies, report["clusters"], report["duplicates"], manifest, len(shards)
        )
        + checks.serving_warnings(report["serving"])
    )
    return report, render_page(report, _sections(report))


def _serving(
    log: ProvenanceLog | None,
    exposure: ExposureStats | None,
    funnel: dict[str, Any],
    clusters: ClusterStats,
    concepts: ConceptStats,
) -> dict[str, Any] | None:
    if log is None or exposure is None:
        return None
    kept_by_source = {source: counts["kept"] for source, counts in funnel["by_source"].items()}
    return serving_section(
        log, exposure, kept_by_source, clusters.kept, dict(concepts.kept_frequency)
    )


def _sections(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    sections: list[tuple[str, str, str]] = [
        ("funnel", "Funnel", funnel_html(report["funnel"], report["funnel"]["reconciliation"])),
        ("clusters", "Clusters", clusters_html(report["clusters"])),
        ("duplicates", "Duplicates", duplicates_html(report["duplicates"])),
        ("concepts", "Concepts", concepts_html(report["concepts"])),
        ("run", "Run", run_html(report["run"])),
    ]
    if report["serving"] is not None:
        sections.append(("serving", "Serving", serving_html(report["serving"])))
    return sections


def write_report(
    dataset_dir: str | os.PathLike[str],
    *,
    provenance_dir: str | os.PathLike[str] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> ReportSummary:
    """Write ``report.json`` and ``report.html`` into a curated dataset directory.

    Args:
        dataset_dir: The curated dataset (manifest.json, data/, centroids.npy, rejects/).
        provenance_dir: The batch service's provenance log; defaults to
            ``dataset_dir/provenance`` when that exists (no serving section otherwise).
        batch_size: Rows per record batch of the streaming scan (bounds memory).

    Returns:
        Paths written, headline counts and the warnings found.

    Raises:
        DatasetError: The dataset (or an explicitly given provenance log) is missing
            or violates the contract in a way the report cannot work around.
    """
    directory = Path(dataset_dir)
    provenance = Path(provenance_dir) if provenance_dir is not None else None
    report, page = build_report(directory, provenance, batch_size)
    json_path, html_path = directory / "report.json", directory / "report.html"
    text = json.dumps(jsonable(report), indent=1, ensure_ascii=False, allow_nan=False)
    atomic_write(json_path, (text + "\n").encode(), fsync=False, mode=0o644)
    atomic_write(html_path, page.encode(), fsync=False, mode=0o644)  # shared, readable
    return ReportSummary(
        html_path=html_path,
        json_path=json_path,
        num_input_rows=report["funnel"]["total"]["in"],
        num_kept=report["funnel"]["total"]["kept"],
        warnings=tuple(report["warnings"]),
        has_serving=report["serving"] is not None,
    )
