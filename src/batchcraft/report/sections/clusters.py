"""The cluster section: cluster sizes, prototypicality, sample texts and the centroid map."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batchcraft.dataset import schema
from batchcraft.report.charts.bars import OUTCOME_COLORS, Series, column_chart
from batchcraft.report.charts.svg import esc
from batchcraft.report.fetch import fetch_rows
from batchcraft.report.html import Html, badge, figure, heading, section, text_block
from batchcraft.report.inputs import ReportInputs
from batchcraft.report.sampling import GroupedSample
from batchcraft.report.sections.clusters_map import centroid_map, centroid_map_figure

SAMPLES_PER_CLUSTER = 3
CLUSTERS_SHOWN = 3
MAX_COLUMNS = 200


class ClusterStats:
    """Accumulates per-cluster row counts, kept counts, mean centroid similarity and samples.

    Args:
        num_clusters: Number of k-means clusters (rows of centroids.npy).
        seed: Seed of the random sampling keys (the report is deterministic).
    """

    columns: tuple[str, ...] = (
        schema.ID,
        schema.CLUSTER,
        schema.CENTROID_SIM,
        schema.KEEP,
        schema.DUP_KIND,
    )

    def __init__(self, num_clusters: int, seed: int = 0) -> None:
        self.num_clusters = num_clusters
        self.rows = np.zeros(num_clusters, dtype=np.int64)
        self.kept = np.zeros(num_clusters, dtype=np.int64)
        self.similarity_sum = np.zeros(num_clusters, dtype=np.float64)
        self.out_of_range = 0
        self.samples = GroupedSample(SAMPLES_PER_CLUSTER)
        self._rng = np.random.default_rng(seed)

    def update(self, batch: pa.RecordBatch, shard: int) -> None:
        """Fold one batch into the per-cluster totals and samples."""
        clusters = pc.fill_null(batch[schema.CLUSTER], -1).to_numpy().astype(np.int64)
        valid = (clusters >= 0) & (clusters < self.num_clusters)
        self.out_of_range += int(np.count_nonzero(~valid))
        clusters = clusters[valid]
        keep = pc.fill_null(batch[schema.KEEP], False).to_numpy(zero_copy_only=False)[valid]
        similarity = np.nan_to_num(
            batch[schema.CENTROID_SIM].to_numpy(zero_copy_only=False).astype(np.float64)[valid]
        )
        size = self.num_clusters
        self.rows += np.bincount(clusters, minlength=size)
        self.kept += np.bincount(clusters[keep], minlength=size)
        self.similarity_sum += np.bincount(clusters, weights=similarity, minlength=size)
        indices = np.flatnonzero(valid)
        payload = {
            "id": batch[schema.ID].take(indices),
            "centroid_sim": similarity,
            "dup_kind": batch[schema.DUP_KIND].take(indices),
        }
        self.samples.offer(clusters, self._rng.random(len(clusters)), payload)

    def shown_clusters(self) -> tuple[list[int], list[int]]:
        """The largest and the smallest non-empty clusters (ties broken by cluster id)."""
        nonempty = np.flatnonzero(self.rows > 0)
        order = nonempty[np.lexsort((nonempty, -self.rows[nonempty]))]
        largest = order[:CLUSTERS_SHOWN].tolist()
        smallest = [c for c in order[::-1][:CLUSTERS_SHOWN].tolist() if c not in largest]
        return largest, smallest

    def sample_ids(self) -> list[str]:
        """Ids of the sample rows of the clusters the report shows."""
        largest, smallest = self.shown_clusters()
        return [row["id"] for c in largest + smallest for row in self.samples.rows(c)]


class ClustersSection:
    """What the k-means clusters hold: sizes, typical rows, the extremes and a map."""

    name = "clusters"
    title = "Clusters"

    def accumulator(self, inputs: ReportInputs) -> ClusterStats:
        """Per-cluster statistics over as many clusters as the dataset has."""
        return ClusterStats(inputs.num_clusters)

    def to_json(
        self, stats: ClusterStats, inputs: ReportInputs, report: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Cluster sizes and similarities, the extreme clusters' samples, the centroid map."""
        fetched = fetch_rows(inputs.shards, stats.sample_ids(), inputs.text_columns)
        return clusters_json(stats, inputs.centroids, fetched)

    def warnings(self, data: dict[str, Any], inputs: ReportInputs) -> list[str]:
        """Rows outside the clusters, missing centroids, a cluster count the manifest denies."""
        warnings = []
        if data["rows_out_of_range"]:
            warnings.append(
                f"{data['rows_out_of_range']:,} rows have a null cluster or one outside "
                f"[0, {data['num_clusters']})"
            )
        if data["map"] is None:
            warnings.append("centroids.npy is missing: no centroid map")
        recorded = (inputs.manifest.get("clustering") or {}).get("num_clusters")
        if recorded is not None and recorded != data["num_clusters"]:
            warnings.append(
                f"manifest clustering.num_clusters = {recorded} but centroids.npy has "
                f"{data['num_clusters']} rows"
            )
        return warnings

    def to_html(self, data: dict[str, Any]) -> Html:
        """Size distribution, centroid map and samples of the extreme clusters."""
        return clusters_html(data)


def clusters_json(
    stats: ClusterStats, centroids: np.ndarray | None, fetched: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """The report's cluster section.

    Args:
        stats: The accumulated cluster statistics.
        centroids: The centroid matrix, or None when the dataset has none.
        fetched: Rows fetched by id (``text``, ``source``) for the sample texts.
    """
    rows = stats.rows
    mean_similarity = np.divide(
        stats.similarity_sum, rows, out=np.full(len(rows), np.nan), where=rows > 0
    )
    largest, smallest = stats.shown_clusters()
    nonempty = rows[rows > 0]
    return {
        "num_clusters": stats.num_clusters,
        "num_empty": int(np.count_nonzero(rows == 0)),
        "rows_out_of_range": stats.out_of_range,
        "sizes": rows.tolist(),
        "kept": stats.kept.tolist(),
        "mean_centroid_sim": [None if np.isnan(v) else round(float(v), 4) for v in mean_similarity],
        "size_summary": {
            "min": int(nonempty.min()) if nonempty.size else 0,
            "median": float(np.median(nonempty)) if nonempty.size else 0.0,
            "max": int(nonempty.max()) if nonempty.size else 0,
        },
        "largest": [_describe(stats, c, mean_similarity, fetched) for c in largest],
        "smallest": [_describe(stats, c, mean_similarity, fetched) for c in smallest],
        "map": None if centroids is None else centroid_map(centroids),
    }


def _describe(
    stats: ClusterStats,
    cluster: int,
    mean_similarity: np.ndarray,
    fetched: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """One shown cluster: its counts and its samples, most typical first."""
    samples = [
        {
            "id": row["id"],
            "centroid_sim": round(row["centroid_sim"], 4),
            "dup_kind": row["dup_kind"],
            "text": fetched.get(row["id"], {}).get("text"),
            "pair_text": fetched.get(row["id"], {}).get("pair_text"),
            "source": fetched.get(row["id"], {}).get("source"),
        }
        for row in sorted(stats.samples.rows(cluster), key=lambda r: -r["centroid_sim"])
    ]
    return {
        "cluster": cluster,
        "rows": int(stats.rows[cluster]),
        "kept": int(stats.kept[cluster]),
        "mean_centroid_sim": round(float(mean_similarity[cluster]), 4),
        "samples": samples,
    }


def clusters_html(clusters: dict[str, Any]) -> Html:
    """Cluster section: size distribution, centroid map and samples of extreme clusters."""
    parts = [_size_chart(clusters["sizes"], clusters["kept"])]
    if clusters["map"] is not None:
        parts.append(centroid_map_figure(clusters))
    for title, key in (("Largest clusters", "largest"), ("Smallest clusters", "smallest")):
        parts.append(heading(title))
        parts.extend(_cluster_card(item) for item in clusters[key])
    summary = clusters["size_summary"]
    lead = (
        f"{clusters['num_clusters']:,} k-means clusters; sizes range from {summary['min']:,} to "
        f"{summary['max']:,} rows (median {summary['median']:g}); {clusters['num_empty']:,} "
        "empty. Samples show what a cluster holds; centroid similarity says how typical a row is."
    )
    return section(ClustersSection.name, ClustersSection.title, lead, *parts)


def _size_chart(sizes: list[int], kept: list[int]) -> Html:
    """Cluster sizes largest first: kept/removed stacks, or a log scale when sizes are skewed."""
    order = sorted(range(len(sizes)), key=lambda c: (-sizes[c], c))
    ranked = len(order) > MAX_COLUMNS
    labels = [str(c) for c in order]
    if ranked:  # evenly spaced ranks keep the shape of the curve
        ranks = [round(i * (len(order) - 1) / (MAX_COLUMNS - 1)) for i in range(MAX_COLUMNS)]
        order, labels = [order[r] for r in ranks], [f"#{r + 1}" for r in ranks]
    nonempty = sorted(size for size in sizes if size > 0)
    skewed = bool(nonempty) and nonempty[-1] > 30 * nonempty[len(nonempty) // 2]
    if skewed:
        series = [Series("rows", [sizes[c] for c in order], OUTCOME_COLORS["kept"])]
        caption = "Rows per cluster on a log scale (sizes are very uneven)."
    else:
        series = [
            Series("kept", [kept[c] for c in order], OUTCOME_COLORS["kept"]),
            Series("removed", [sizes[c] - kept[c] for c in order], OUTCOME_COLORS["removed_other"]),
        ]
        caption = "Rows per cluster, split into kept and removed duplicates."
    if ranked:
        caption += f" {MAX_COLUMNS} evenly spaced ranks of {len(sizes):,} clusters."
    chart = column_chart(
        labels,
        series,
        title="Cluster sizes, largest first",
        stacked=not skewed,
        log=skewed,
        x_label="clusters ranked by size" if ranked else "cluster (largest first)",
        y_label="rows (log scale)" if skewed else "rows",
    )
    return figure(chart, caption)


def _similarity_label(value: float) -> str:
    return f"centroid sim {value:.3f}"


def _cluster_card(item: dict[str, Any]) -> Html:
    samples = "".join(
        f"<div>{badge(_similarity_label(s['centroid_sim']))}"
        f"{badge(s['source'] or '?')}{badge(s['dup_kind'], s['dup_kind']) if s['dup_kind'] else ''}"
        f"{text_block(s['text'], s['pair_text'])}</div>"
        for s in item["samples"]
    )
    head = (
        f"Cluster {item['cluster']} · {item['rows']:,} rows · {item['kept']:,} kept · "
        f"mean centroid similarity {item['mean_centroid_sim']:.3f}"
    )
    return Html(f'<div class="cluster"><div class="head">{esc(head)}</div>{samples}</div>')
