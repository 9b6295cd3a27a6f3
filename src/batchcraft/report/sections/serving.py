"""The serving section: what training saw, from the batch service's provenance log."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batchcraft.dataset.provenance import describe_format
from batchcraft.report.idhash import HashIndex
from batchcraft.report.provenance import ProvenanceLog

MAX_POINTS = 200
TOP_CONCEPTS = 20


class ExposureStats:
    """Accumulates how often rows of each source, cluster and concept were served.

    Args:
        log: The provenance log (its ``served`` table gives times served per id).
        num_clusters: Number of clusters.
    """

    columns: tuple[str, ...] = ("id", "source", "cluster", "concepts", "keep")

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
        valid, positions = self.index.lookup(batch["id"])
        if not valid.any():
            return
        weights = np.where(valid, self.times[positions], 0)
        self.matched[positions[valid]] = True
        keep = pc.fill_null(batch["keep"], False).to_numpy(zero_copy_only=False)
        self.matched_kept[positions[valid & keep]] = True
        self.served_not_kept += int(weights[~keep].sum())
        sources = pa.table({"source": batch["source"], "weight": weights})
        for row in sources.group_by("source").aggregate([("weight", "sum")]).to_pylist():
            self.by_source[str(row["source"])] += row["weight_sum"]
        clusters = pc.fill_null(batch["cluster"], -1).to_numpy().astype(np.int64)
        inside = (clusters >= 0) & (clusters < len(self.by_cluster))
        self.by_cluster += np.bincount(
            clusters[inside], weights=weights[inside], minlength=len(self.by_cluster)
        ).astype(np.int64)
        parents = pc.list_parent_indices(batch["concepts"]).to_numpy()
        concepts = pa.table(
            {"concept": pc.list_flatten(batch["concepts"]), "weight": weights[parents]}
        )
        for row in concepts.group_by("concept").aggregate([("weight", "sum")]).to_pylist():
            self.by_concept[str(row["concept"])] += row["weight_sum"]


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


def _metric_series(log: ProvenanceLog) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Per selector and metric, one series per job: mean over ranks per step, downsampled."""
    sums: dict[tuple[str, str, str], dict[int, list[float]]] = defaultdict(dict)
    for batch in log.batches:
        for metric, value in batch.info.items():
            cell = sums[(batch.selector, metric, batch.job)].setdefault(batch.step, [0.0, 0.0])
            cell[0] += value
            cell[1] += 1
    result: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for (selector, metric, job), by_step in sorted(sums.items()):
        steps = np.array(sorted(by_step), dtype=np.float64)
        values = np.array([by_step[int(s)][0] / by_step[int(s)][1] for s in steps])
        if len(steps) > MAX_POINTS:
            buckets = np.array_split(np.arange(len(steps)), MAX_POINTS)
            steps = np.array([steps[b].mean() for b in buckets])
            values = np.array([values[b].mean() for b in buckets])
        series = {"job": job, "step": steps.round(2).tolist(), "value": values.round(6).tolist()}
        result.setdefault(selector, {}).setdefault(metric, []).append(series)
    return result


def serving_section(
    log: ProvenanceLog,
    exposure: ExposureStats,
    kept_by_source: dict[str, int],
    kept_by_cluster: np.ndarray,
    kept_by_concept: dict[str, int],
) -> dict[str, Any]:
    """The report's serving section: exposure versus share of the data, repeats, metrics."""
    num_kept = sum(kept_by_source.values())
    repeats = _repeats(log)
    matched = int(exposure.times[exposure.matched].sum())
    unknown = repeats["served_examples"] - matched
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
        "unknown_id_examples": unknown,
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
        "metrics": _metric_series(log),
    }
