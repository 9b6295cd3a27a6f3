"""The serving section's exposure: how often rows of each source, cluster and concept
were served (accumulator), against their share of the kept rows (JSON), as bars and a
scatter plot (HTML)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batchcraft.dataset import schema
from batchcraft.report.charts.bars import HALF_WIDTH, PALETTE, Series, bar_chart
from batchcraft.report.charts.continuous import scatter
from batchcraft.report.html import Html, figure, grid
from batchcraft.report.idhash import HashIndex
from batchcraft.report.provenance import ProvenanceLog

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

    def matched_examples(self) -> int:
        """Served examples whose id is a row of the dataset (so far)."""
        return int(self.times[self.matched].sum())


def share_of(part: float, whole: float) -> float:
    """``part / whole`` rounded for the report (0 when ``whole`` is 0)."""
    return round(part / whole, 6) if whole else 0.0


def exposure_json(
    exposure: ExposureStats,
    kept_by_source: dict[str, int],
    kept_by_cluster: list[int],
    kept_by_concept: dict[str, int],
) -> dict[str, Any]:
    """Per source, cluster and top concept: its share of the kept rows and of served examples."""
    num_kept = sum(kept_by_source.values())
    matched = exposure.matched_examples()
    top = sorted(kept_by_concept.items(), key=lambda item: (-item[1], item[0]))[:TOP_CONCEPTS]
    return {
        "by_source": [
            {
                "source": source,
                "data_share": share_of(count, num_kept),
                "served_share": share_of(exposure.by_source.get(source, 0), matched),
            }
            for source, count in sorted(kept_by_source.items())
        ],
        "by_cluster": {
            "data_share": [share_of(int(c), num_kept) for c in kept_by_cluster],
            "served_share": [share_of(int(c), matched) for c in exposure.by_cluster],
        },
        "by_concept": [
            {
                "concept": name,
                "data_share": share_of(count, num_kept),
                "served_share": share_of(exposure.by_concept.get(name, 0), matched),
            }
            for name, count in top
        ],
    }


def exposure_figures(serving: dict[str, Any]) -> list[Html]:
    """Exposure per source and per cluster side by side, then per concept (if any)."""
    sources = serving["by_source"]
    concepts = serving["by_concept"]
    figures = [
        grid(
            figure(
                _share_bars([s["source"] for s in sources], sources, "Exposure per source"),
                "Share of kept rows versus share of served examples, per source.",
            ),
            figure(
                _cluster_scatter(serving["by_cluster"]),
                "One point per cluster; points above the diagonal were served more than their share.",
            ),
        )
    ]
    if concepts:
        figures.append(
            figure(
                _share_bars([c["concept"] for c in concepts], concepts, "Exposure per concept"),
                f"The {len(concepts)} most frequent concepts: share of kept rows versus share of served examples.",
            )
        )
    return figures


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
