"""The serving section: what training saw, from the batch service's provenance log."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow.compute as pc

from batchcraft.dataset.provenance import describe_format
from batchcraft.report.html import Html, cards, section, share
from batchcraft.report.inputs import ReportInputs
from batchcraft.report.provenance import ProvenanceLog
from batchcraft.report.sections.serving_exposure import (
    ExposureStats,
    exposure_figures,
    exposure_json,
    share_of,
)
from batchcraft.report.sections.serving_metrics import metric_charts, metric_series


class ServingSection:
    """Exposure, repeats and selector metrics; only when there is a provenance log."""

    name = "serving"
    title = "Serving"

    def accumulator(self, inputs: ReportInputs) -> ExposureStats | None:
        """Exposure counters keyed by the served ids (None without a provenance log)."""
        if inputs.provenance is None:
            return None
        return ExposureStats(inputs.provenance, inputs.num_clusters)

    def to_json(
        self, stats: ExposureStats | None, inputs: ReportInputs, report: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """Served shares against the kept shares of the funnel, clusters and concepts."""
        if inputs.provenance is None or stats is None:
            return None
        by_source = report["funnel"]["by_source"]
        kept_by_source = {source: counts["kept"] for source, counts in by_source.items()}
        kept_by_cluster = report["clusters"]["kept"]
        kept_by_concept = report["concepts"]["frequency_kept"]
        shares = exposure_json(stats, kept_by_source, kept_by_cluster, kept_by_concept)
        return serving_json(inputs.provenance, stats, sum(kept_by_source.values()), shares)

    def warnings(self, data: dict[str, Any], inputs: ReportInputs) -> list[str]:
        """Malformed log lines, served ids unknown to the dataset, removed rows served."""
        warnings = []
        if data["malformed_lines"]:
            warnings.append(
                f"provenance: {data['malformed_lines']:,} malformed lines skipped "
                f"(first: {data['first_malformed']})"
            )
        if data["unknown_id_examples"]:
            warnings.append(
                f"provenance: {data['unknown_id_examples']:,} served examples have ids that are "
                "not in this dataset (a log of another dataset?)"
            )
        if data["served_not_kept_examples"]:
            warnings.append(
                f"provenance: {data['served_not_kept_examples']:,} served examples are rows "
                "with keep = false (removed duplicates were trained on)"
            )
        return warnings

    def to_html(self, data: dict[str, Any]) -> Html:
        """Exposure versus share of the data, repeats, per-selector metrics."""
        return serving_html(data)


def _repeats(log: ProvenanceLog) -> dict[str, Any]:
    served = log.served
    assert served is not None
    times = served["times"].to_numpy() if served.num_rows else np.zeros(0, np.int64)
    total = int(times.sum())
    distinct = len(pc.unique(served["id"])) if served.num_rows else 0
    within_epoch = int((times - 1).sum())
    return {
        "served_examples": total,
        "distinct_ids": distinct,
        "within_epoch_repeats": within_epoch,
        "within_epoch_repeat_rate": share_of(within_epoch, total),
        "overall_repeat_rate": share_of(total - distinct, total),
    }


def serving_json(
    log: ProvenanceLog, exposure: ExposureStats, num_kept: int, shares: dict[str, Any]
) -> dict[str, Any]:
    """The report's serving section: repeats, coverage, exposure shares, metrics.

    Args:
        log: The provenance log.
        exposure: The exposure accumulated over the data shards.
        num_kept: Kept rows of the dataset.
        shares: Exposure per source, cluster and concept (`exposure_json`).
    """
    repeats = _repeats(log)
    matched = exposure.matched_examples()
    return {
        "directory": str(log.directory),
        "files": len(log.files),
        "format": describe_format(),
        "batches": len(log.batches),
        "jobs": sorted({batch.job for batch in log.batches}),
        "selectors": sorted({batch.selector for batch in log.batches}),
        "epochs": sorted({batch.epoch for batch in log.batches}),
        "ranks": sorted({batch.rank for batch in log.batches}),
        "malformed_lines": log.malformed,
        "first_malformed": log.first_error,
        **repeats,
        "unknown_id_examples": repeats["served_examples"] - matched,
        "served_not_kept_examples": exposure.served_not_kept,
        "coverage_of_kept": share_of(int(exposure.matched_kept.sum()), num_kept),
        **shares,
        "metrics": metric_series(log),
    }


def serving_html(serving: dict[str, Any]) -> Html:
    """Serving section: exposure versus share of the data, repeats, per-selector metrics."""
    lead = (
        f"What training saw, from the batch service's provenance log ({serving['files']} file(s) "
        f"in {serving['directory']}; selectors: {', '.join(serving['selectors']) or 'none'}). "
        "Bars compare each group's share of the kept data with its share of served examples."
    )
    parts = [_key_figures(serving), *exposure_figures(serving), *metric_charts(serving["metrics"])]
    return section(ServingSection.name, ServingSection.title, lead, *parts)


def _key_figures(serving: dict[str, Any]) -> Html:
    return cards(
        [
            ("Batches served", f"{serving['batches']:,}", f"{len(serving['jobs'])} job(s)"),
            (
                "Examples served",
                f"{serving['served_examples']:,}",
                f"{serving['distinct_ids']:,} distinct",
            ),
            ("Coverage of kept rows", share(serving["coverage_of_kept"]), "served at least once"),
            (
                "Repeats within an epoch",
                share(serving["within_epoch_repeat_rate"]),
                f"{serving['within_epoch_repeats']:,} examples",
            ),
            ("Overall repeat rate", share(serving["overall_repeat_rate"]), "all epochs and jobs"),
        ]
    )
