"""The serving section: what training saw, from the batch service's provenance log."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batchcraft.dataset import schema
from batchcraft.dataset.provenance import describe_format
from batchcraft.report.charts.bars import HALF_WIDTH, PALETTE, Series, bar_chart
from batchcraft.report.charts.continuous import scatter
from batchcraft.report.html import Html, cards, figure, grid, section, share
from batchcraft.report.idhash import HashIndex
from batchcraft.report.inputs import ReportInputs
from batchcraft.report.provenance import ProvenanceLog
from batchcraft.report.sections.serving_metrics import metric_charts, metric_series

TOP_CONCEPTS = 20


class ExposureStats:
    """Accumulates how often rows of each source, cluster and concept were served.

    Args:
        log: The provenance log (its ``served`` table gives times served per id).
        num_clusters: Number of clusters.
    """

    columns: tuple[str, ...] = (
        schema.ID,
        schema.SOURCE,
        schema.CLUSTER,
        schema.CONCEPTS,
        schema.KEEP,
    )

    def __init__(self, log: ProvenanceLog, num_clusters: int) -> None:
        served = log.served if log.served is not None else pa.table({"id": [], "times": []})
        per_id = served.group_by("id").aggregate([("times", "sum")])
        self.index = HashIndex(per_id["id"])
        self.times = per_id["times_sum"].to_numpy().astype(np.int64)
        self.matched = np.zeros(len(self.times), dtype=bool)
        self.matched_kept = np.zeros(len(self.times), dtype=bool)
        self.by_source: Counter[str] = Counter()
        self.by_concept: Counter[str] = Counter()
        self.by_cluster = np.zeros(num_clusters, dtype=np.int64)
        self.served_not_kept = 0

    def update(self, batch: pa.RecordBatch, shard: int) -> None:
        """Add the times each of the batch's rows was served to its source, cluster, concepts."""
        valid, positions = self.index.lookup(batch[schema.ID])
        if not valid.any():
            return
        weights = np.where(valid, self.times[positions], 0)
        self.matched[positions[valid]] = True
        keep = pc.fill_null(batch[schema.KEEP], False).to_numpy(zero_copy_only=False)
        self.matched_kept[positions[valid & keep]] = True
        self.served_not_kept += int(weights[~keep].sum())
        sources = pa.table({"source": batch[schema.SOURCE], "weight": weights})
        for row in sources.group_by("source").aggregate([("weight", "sum")]).to_pylist():
            self.by_source[str(row["source"])] += row["weight_sum"]
        clusters = pc.fill_null(batch[schema.CLUSTER], -1).to_numpy().astype(np.int64)
        inside = (clusters >= 0) & (clusters < len(self.by_cluster))
        self.by_cluster += np.bincount(
            clusters[inside], weights=weights[inside], minlength=len(self.by_cluster)
        ).astype(np.int64)
        lists = batch[schema.CONCEPTS]
        parents = pc.list_parent_indices(lists).to_numpy()
        concepts = pa.table({"concept": pc.list_flatten(lists), "weight": weights[parents]})
        for row in concepts.group_by("concept").aggregate([("weight", "sum")]).to_pylist():
            self.by_concept[str(row["concept"])] += row["weight_sum"]


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
        return serving_json(
            inputs.provenance,
            stats,
            {source: counts["kept"] for source, counts in by_source.items()},
            report["clusters"]["kept"],
            report["concepts"]["frequency_kept"],
        )

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


def _share(part: float, whole: float) -> float:
    return round(part / whole, 6) if whole else 0.0


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
        "within_epoch_repeat_rate": _share(within_epoch, total),
        "overall_repeat_rate": _share(total - distinct, total),
    }


def serving_json(
    log: ProvenanceLog,
    exposure: ExposureStats,
    kept_by_source: dict[str, int],
    kept_by_cluster: list[int],
    kept_by_concept: dict[str, int],
) -> dict[str, Any]:
    """The report's serving section: exposure versus share of the data, repeats, metrics."""
    num_kept = sum(kept_by_source.values())
    repeats = _repeats(log)
    matched = int(exposure.times[exposure.matched].sum())
    top = sorted(kept_by_concept.items(), key=lambda item: (-item[1], item[0]))[:TOP_CONCEPTS]
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
        "coverage_of_kept": _share(int(exposure.matched_kept.sum()), num_kept),
        "by_source": [
            {
                "source": source,
                "data_share": _share(count, num_kept),
                "served_share": _share(exposure.by_source.get(source, 0), matched),
            }
            for source, count in sorted(kept_by_source.items())
        ],
        "by_cluster": {
            "data_share": [_share(int(c), num_kept) for c in kept_by_cluster],
            "served_share": [_share(int(c), matched) for c in exposure.by_cluster],
        },
        "by_concept": [
            {
                "concept": name,
                "data_share": _share(count, num_kept),
                "served_share": _share(exposure.by_concept.get(name, 0), matched),
            }
            for name, count in top
        ],
        "metrics": metric_series(log),
    }


def serving_html(serving: dict[str, Any]) -> Html:
    """Serving section: exposure versus share of the data, repeats, per-selector metrics."""
    lead = (
        f"What training saw, from the batch service's provenance log ({serving['files']} file(s) "
        f"in {serving['directory']}; selectors: {', '.join(serving['selectors']) or 'none'}). "
        "Bars compare each group's share of the kept data with its share of served examples."
    )
    sources = serving["by_source"]
    concepts = serving["by_concept"]
    parts: list[str] = [
        _key_figures(serving),
        grid(
            figure(
                _share_bars([s["source"] for s in sources], sources, "Exposure per source"),
                "Share of kept rows versus share of served examples, per source.",
            ),
            figure(
                _cluster_scatter(serving["by_cluster"]),
                "One point per cluster; points above the diagonal were served more than their share.",
            ),
        ),
    ]
    if concepts:
        parts.append(
            figure(
                _share_bars([c["concept"] for c in concepts], concepts, "Exposure per concept"),
                f"The {len(concepts)} most frequent concepts: share of kept rows versus share of served examples.",
            )
        )
    parts.extend(metric_charts(serving["metrics"]))
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


def _share_bars(labels: list[str], rows: list[dict[str, Any]], title: str) -> str:
    return bar_chart(
        labels,
        [
            Series("share of kept data", [r["data_share"] for r in rows], PALETTE[0]),
            Series("share served", [r["served_share"] for r in rows], PALETTE[1]),
        ],
        title=title,
        width=HALF_WIDTH,
        value_format=lambda v: f"{100 * v:.0f} %",
        value_label="share",
    )


def _cluster_scatter(by_cluster: dict[str, list[float]]) -> str:
    data, served = by_cluster["data_share"], by_cluster["served_share"]
    tips = [
        f"cluster {c}: {100 * d:.2f} % of data, {100 * s:.2f} % served"
        for c, (d, s) in enumerate(zip(data, served, strict=True))
    ]
    return scatter(
        data,
        served,
        tips=tips,
        diagonal=True,
        title="Exposure per cluster",
        width=HALF_WIDTH,
        x_label="share of kept data",
        y_label="share served",
        height=320,
        value_format=lambda v: f"{100 * v:.1f} %",
    )
