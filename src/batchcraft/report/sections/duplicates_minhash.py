"""The duplicate section's MinHash part: what MinHash near dedup did (its parameters and
S-curve from the manifest, the pairs it verified and rejected) and the Jaccard of the rows
it removed, from ``dup_jaccard`` in the data."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batchcraft.dataset import schema
from batchcraft.report.charts.bars import Series
from batchcraft.report.charts.continuous import Marker, histogram
from batchcraft.report.html import Html, figure, heading, paragraph, table

BIN_WIDTH = 0.01
NUM_BINS = round(1.0 / BIN_WIDTH)  # a Jaccard is in [0, 1]
COLOR = "#59a14f"
CURVE_POINTS = ("0.5", "0.7", "0.8", "0.9")


class MinhashStats:
    """Counts the MinHash duplicates and bins their Jaccard to the row they duplicate.

    Args:
        has_jaccard: Whether the shards have a ``dup_jaccard`` column (datasets curated
            before MinHash near dedup have none).
    """

    def __init__(self, has_jaccard: bool) -> None:
        self.columns = (schema.DUP_JACCARD,) if has_jaccard else ()
        self.removed = 0
        self.missing_jaccard = 0
        self.histogram = np.zeros(NUM_BINS, dtype=np.int64)

    def update(self, batch: pa.RecordBatch, kinds: np.ndarray) -> None:
        """Fold one batch (``kinds``: its decoded ``dup_kind``) into the counts."""
        minhash = kinds == "minhash"
        self.removed += int(np.count_nonzero(minhash))
        if not self.columns:
            self.missing_jaccard += int(np.count_nonzero(minhash))
            return
        jaccard = pc.fill_null(batch[schema.DUP_JACCARD], math.nan)
        values = jaccard.to_numpy(zero_copy_only=False)[minhash]
        self.missing_jaccard += int(np.count_nonzero(np.isnan(values)))
        values = values[~np.isnan(values)]
        bins = np.clip((values / BIN_WIDTH + 1e-9).astype(np.int64), 0, NUM_BINS - 1)
        self.histogram += np.bincount(bins, minlength=NUM_BINS)


def minhash_json(stats: MinhashStats, manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The MinHash part of the section, or None for a dataset whose manifest records no
    MinHash stage and whose data holds no MinHash duplicate."""
    recorded = manifest.get("near_dedup") or {}
    if recorded.get("method") != "minhash" and not stats.removed:
        return None
    populated = np.flatnonzero(stats.histogram)
    first = int(populated[0]) if populated.size else NUM_BINS - 1
    return {
        "settings": recorded,
        "removed": stats.removed,
        "missing_jaccard": stats.missing_jaccard,
        "histogram": {
            "bin_edges": [round(i * BIN_WIDTH, 6) for i in range(first, NUM_BINS + 1)],
            "minhash": stats.histogram[first:].tolist(),
        },
    }


def minhash_html(data: dict[str, Any]) -> Html:
    """What MinHash did, its S-curve, and the Jaccard of the rows it removed."""
    settings = data["settings"]
    curve = settings.get("detection_probability") or {}
    parts = [heading("MinHash near duplicates"), paragraph(_summary(data))]
    if curve:
        rows = [[point, curve.get(point)] for point in CURVE_POINTS if point in curve]
        parts.append(
            table(["Jaccard of a pair", "probability it becomes a candidate"], rows, (0, 1))
        )
    if data["removed"]:
        edges = data["histogram"]["bin_edges"]
        threshold = settings.get("threshold")
        markers = [Marker(threshold, f"threshold {threshold:.2f}")] if threshold else []
        chart = histogram(
            edges,
            [Series("MinHash duplicates", data["histogram"]["minhash"], COLOR)],
            title="Jaccard of each removed row to the row it duplicates",
            markers=markers,
            x_label="Jaccard of the word n-gram shingle sets",
        )
        parts.append(figure(chart, "Every removed pair was verified on its shingle sets."))
    return Html("".join(parts))


def _summary(data: dict[str, Any]) -> str:
    settings = data["settings"]
    if settings.get("method") != "minhash":
        return (
            f"{data['removed']:,} rows are MinHash duplicates (the manifest records no settings)."
        )
    return (
        f"MinHash compared word {settings.get('ngram_size')}-gram shingles with "
        f"{settings.get('bands')} bands × {settings.get('rows')} rows and removed "
        f"{data['removed']:,} rows at Jaccard ≥ {settings.get('threshold')} to a kept row "
        f"(keep policy {settings.get('keep_policy')}), in {settings.get('groups', 0):,} groups. "
        f"Of {settings.get('candidate_pairs', 0):,} candidate pairs from the LSH buckets, "
        f"{settings.get('verified_pairs', 0):,} reached the threshold on their true Jaccard and "
        f"{settings.get('rejected_pairs', 0):,} did not (they were never merged)."
    )
