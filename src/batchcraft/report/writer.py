"""``write_report``: scan a curated dataset once and write report.json and report.html.

The writer knows no section: it opens the dataset, lets every section of
`batchcraft.report.sections.SECTIONS` start its accumulator, scans the shards once,
then asks each section, in registry order, for its JSON, its warnings and its HTML.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from batchcraft import __version__
from batchcraft._files import atomic_write, jsonable
from batchcraft.dataset import layout
from batchcraft.dataset.remote import local_dataset, upload_files
from batchcraft.report.inputs import ReportInputs, open_inputs
from batchcraft.report.page import render_page
from batchcraft.report.scan import DEFAULT_BATCH_SIZE, scan
from batchcraft.report.sections import SECTIONS
from batchcraft.storage import StorageOptions, is_url, resolve

REPORT_VERSION = 1


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


def build_report(
    dataset_dir: Path, provenance_dir: Path | None = None, batch_size: int = DEFAULT_BATCH_SIZE
) -> tuple[dict[str, Any], str]:
    """Compute the report of ``dataset_dir`` in one streaming pass.

    Returns:
        The JSON document and the HTML page.
    """
    inputs = open_inputs(dataset_dir, provenance_dir)
    stats = [section.accumulator(inputs) for section in SECTIONS]
    scan(
        inputs.shards, [accumulator for accumulator in stats if accumulator is not None], batch_size
    )
    report = _header(inputs)
    warnings: list[str] = []
    for section, accumulator in zip(SECTIONS, stats, strict=True):
        data = section.to_json(accumulator, inputs, report)
        report[section.name] = data
        if data is not None:
            warnings += section.warnings(data, inputs)
    report["warnings"] = warnings
    html_sections = [
        (section.name, section.title, section.to_html(report[section.name]))
        for section in SECTIONS
        if report[section.name] is not None
    ]
    return report, render_page(report, html_sections)


def _header(inputs: ReportInputs) -> dict[str, Any]:
    """The report's first keys: versions, time, the dataset, and a place for warnings."""
    return {
        "report_version": REPORT_VERSION,
        "generated_by": f"batchcraft {__version__}",
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "dataset": {
            "path": str(inputs.directory),
            "name": inputs.directory.resolve().name,
            "schema_version": inputs.manifest["schema_version"],
            "num_shards": len(inputs.shards),
        },
        "warnings": [],  # filled once every section has reported
    }


def write_report(
    dataset_dir: str | os.PathLike[str],
    *,
    provenance_dir: str | os.PathLike[str] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    storage_options: StorageOptions | None = None,
) -> ReportSummary:
    """Write ``report.json`` and ``report.html`` into a curated dataset directory.

    Args:
        dataset_dir: The curated dataset (manifest.json, data/, centroids.npy, rejects/):
            a local path, or a URL of a store (read from a local copy, `dataset.remote`).
        provenance_dir: The batch service's provenance log; defaults to
            ``dataset_dir/provenance`` when that exists (no serving section otherwise).
        batch_size: Rows per record batch of the streaming scan (bounds memory).
        storage_options: Options of the store ``dataset_dir`` is in (`storage.resolve`).

    Returns:
        Paths written, headline counts and the warnings found.

    Raises:
        DatasetError: The dataset (or an explicitly given provenance log) is missing
            or violates the contract in a way the report cannot work around.
    """
    if is_url(str(dataset_dir)) and not resolve(str(dataset_dir), storage_options).is_local:
        # written on a local copy, then put beside the dataset
        copy = local_dataset(dataset_dir, storage_options)
        summary = write_report(copy, provenance_dir=provenance_dir, batch_size=batch_size)
        upload_files([summary.json_path, summary.html_path], str(dataset_dir), storage_options)
        return summary
    directory = Path(dataset_dir)
    provenance = Path(provenance_dir) if provenance_dir is not None else None
    report, page = build_report(directory, provenance, batch_size)
    json_path = directory / layout.REPORT_JSON
    html_path = directory / layout.REPORT_HTML
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
