"""The duplicate section: max_sim distribution, what-if thresholds, MinHash near dedup
(`duplicates_minhash`) and example pairs (`duplicates_examples`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batchcraft.dataset import schema
from batchcraft.dataset.manifest import DedupSettings, dedup_settings
from batchcraft.dataset.schema import similarity_threshold
from batchcraft.report.charts.bars import OUTCOME_COLORS, Series
from batchcraft.report.charts.continuous import Marker, histogram
from batchcraft.report.fetch import fetch_rows
from batchcraft.report.html import Html, figure, heading, paragraph, percent, section, table
from batchcraft.report.inputs import ReportInputs
from batchcraft.report.scan import file_columns
from batchcraft.report.sections.duplicates_examples import PairSample, examples_json, pair_html
from batchcraft.report.sections.duplicates_minhash import MinhashStats, minhash_html, minhash_json

BIN_WIDTH = 0.005
NUM_BINS = round(2.0 / BIN_WIDTH)  # max_sim is a cosine: [-1, 1]
MAX_SHOWN_BINS = 120
CATEGORIES = ("kept", "near", "semantic", "removed_other")
WHAT_IF_EPS = (0.001, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3)
WHAT_IF_NOTE = (
    "Rows whose max_sim reaches the threshold. This is an upper bound of what a re-run "
    "would remove: in every group of mutual duplicates one row is kept, so chain-safe "
    "keep rules remove at most this many."
)
WHAT_IF_HEADERS = (
    "eps",
    "threshold",
    "rows with max_sim ≥ threshold",
    "% of compared rows",
    "actually removed",
)


class DuplicateStats:
    """Accumulates the max_sim histogram, what-if counts and duplicate samples.

    Only rows that entered semantic dedup (everything except exact and MinHash
    duplicates) count towards the histogram and the what-if table.

    Args:
        settings: The dedup parameters recorded in the manifest.
        seed: Seed of the random sampling keys.
        has_jaccard: Whether the shards have ``dup_jaccard`` (MinHash's Jaccard).
    """

    def __init__(self, settings: DedupSettings, seed: int = 0, has_jaccard: bool = False) -> None:
        self.minhash = MinhashStats(has_jaccard)
        self.columns = (
            schema.ID,
            schema.DUP_OF,
            schema.DUP_KIND,
            schema.MAX_SIM,
            schema.KEEP,
            *self.minhash.columns,
        )
        self.settings = settings
        self.eps_grid = sorted({*WHAT_IF_EPS, round(settings.eps, 6)})
        self.at_or_above = np.zeros(len(self.eps_grid), dtype=np.int64)
        self.histogram = np.zeros((len(CATEGORIES), NUM_BINS), dtype=np.int64)
        self.stage_rows = 0
        self.missing_max_sim = 0
        self.pairs = PairSample(seed)

    def update(self, batch: pa.RecordBatch, shard: int) -> None:
        """Fold one batch into the histogram, the what-if counts and the samples."""
        kinds = pc.fill_null(batch[schema.DUP_KIND], "").to_numpy(zero_copy_only=False)
        keep = pc.fill_null(batch[schema.KEEP], False).to_numpy(zero_copy_only=False)
        max_sim = batch[schema.MAX_SIM].to_numpy(zero_copy_only=False).astype(np.float32)
        compared = (kinds != "exact") & (kinds != "minhash")
        stage = compared & ~np.isnan(max_sim)
        self.missing_max_sim += int(np.count_nonzero(compared & np.isnan(max_sim)))
        self.minhash.update(batch, kinds)
        self.stage_rows += int(np.count_nonzero(stage))
        similarity = max_sim[stage]
        for index, eps in enumerate(self.eps_grid):
            # float32 comparison, like the pipeline's (similarities are float32).
            self.at_or_above[index] += int(
                np.count_nonzero(similarity >= np.float32(similarity_threshold(eps)))
            )
        category = np.select(
            [keep[stage], kinds[stage] == "near", kinds[stage] == "semantic"], [0, 1, 2], 3
        )
        bins = _bin_of(similarity)
        flat = np.bincount(category * NUM_BINS + bins, minlength=self.histogram.size)
        self.histogram += flat.reshape(self.histogram.shape)
        self.pairs.offer(batch, kinds, max_sim, self.minhash.columns)


class DuplicatesSection:
    """How close rows are to each other, what other thresholds would remove, example pairs."""

    name = "duplicates"
    title = "Duplicates"

    def accumulator(self, inputs: ReportInputs) -> DuplicateStats:
        """Statistics under the dedup settings the manifest records."""
        has_jaccard = bool(inputs.shards) and schema.DUP_JACCARD in file_columns(inputs.shards[0])
        return DuplicateStats(dedup_settings(inputs.manifest), has_jaccard=has_jaccard)

    def to_json(
        self, stats: DuplicateStats, inputs: ReportInputs, report: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Histogram, what-if table calibrated by the funnel's removals, and example pairs."""
        total = report["funnel"]["total"]
        # Embeddings only for duplicate pairs (their similarity is recomputed from them).
        columns = [*inputs.text_columns, schema.EMBEDDING]
        fetched = fetch_rows(inputs.shards, stats.pairs.sample_ids(), columns)
        removed = total["near_duplicates"] + total["semantic_duplicates"]
        return duplicates_json(stats, fetched, removed, inputs.manifest)

    def warnings(self, data: dict[str, Any], inputs: ReportInputs) -> list[str]:
        """Compared rows without a max_sim, MinHash duplicates without their Jaccard."""
        warnings = []
        if data["missing_max_sim"]:
            warnings.append(f"{data['missing_max_sim']:,} compared rows have a null max_sim")
        missing_jaccard = (data.get("minhash") or {}).get("missing_jaccard")
        if missing_jaccard:
            warnings.append(f"{missing_jaccard:,} MinHash duplicates have a null dup_jaccard")
        return warnings

    def to_html(self, data: dict[str, Any]) -> Html:
        """max_sim histogram, what-if table and example pairs."""
        return duplicates_html(data)


def _shown_histogram(stats: DuplicateStats) -> dict[str, Any]:
    """The histogram cropped to the populated range and merged to at most MAX_SHOWN_BINS."""
    populated = np.flatnonzero(stats.histogram.sum(axis=0))
    threshold_bin = _bin_of(np.array([stats.settings.threshold]))[0]
    first = max(0, min(int(populated[0]) if populated.size else NUM_BINS, threshold_bin - 10))
    merge = max(1, math.ceil((NUM_BINS - first) / MAX_SHOWN_BINS))
    first = max(0, NUM_BINS - math.ceil((NUM_BINS - first) / merge) * merge)
    pad = (-(NUM_BINS - first)) % merge
    counts = np.pad(stats.histogram[:, first:], ((0, 0), (pad, 0)))
    merged = counts.reshape(len(CATEGORIES), -1, merge).sum(axis=2)
    start = -1.0 + (first - pad) * BIN_WIDTH
    edges = [round(start + i * merge * BIN_WIDTH, 6) for i in range(merged.shape[1] + 1)]
    return {"bin_edges": edges} | {
        name: merged[index].tolist() for index, name in enumerate(CATEGORIES)
    }


def _bin_of(similarity: np.ndarray) -> np.ndarray:
    """Histogram bin of each similarity (the epsilon keeps 0.95 out of [0.945, 0.95))."""
    scaled = (similarity.astype(np.float64) + 1.0) / BIN_WIDTH + 1e-6
    return np.clip(scaled.astype(np.int64), 0, NUM_BINS - 1)


def duplicates_json(
    stats: DuplicateStats,
    fetched: dict[str, dict[str, Any]],
    removed_semantic: int,
    manifest: dict[str, Any],
) -> dict[str, Any]:
    """The report's duplicate section.

    Args:
        stats: The accumulated duplicate statistics.
        fetched: Rows fetched by id (``text``, ``source``, ``embedding``).
        removed_semantic: Rows the pipeline actually removed in semantic dedup
            (near + semantic), to calibrate the what-if estimate.
        manifest: The manifest (its MinHash settings).
    """
    settings = stats.settings
    minhash = minhash_json(stats.minhash, manifest)
    minhash_threshold = minhash["settings"].get("threshold") if minhash else None
    return {
        "eps": settings.eps,
        "threshold": settings.threshold,
        "near_threshold": settings.near_threshold,
        "keep_policy": settings.keep_policy,
        "stage_rows": stats.stage_rows,
        "missing_max_sim": stats.missing_max_sim,
        "histogram": _shown_histogram(stats),
        "what_if": _what_if(stats, removed_semantic),
        "what_if_note": WHAT_IF_NOTE,
        "examples": examples_json(stats.pairs, fetched, settings.threshold, minhash_threshold),
        "minhash": minhash,
    }


def _what_if(stats: DuplicateStats, removed_semantic: int) -> list[dict[str, Any]]:
    """Per eps of the grid: rows a re-run could remove; the chosen eps with the actual count."""
    what_if = []
    for eps, count in zip(stats.eps_grid, stats.at_or_above.tolist(), strict=True):
        chosen = math.isclose(eps, stats.settings.eps, abs_tol=1e-9)
        what_if.append(
            {
                "eps": eps,
                "threshold": round(similarity_threshold(eps), 6),
                "rows_at_or_above": count,
                "percent_of_stage_input": _percent(count, stats.stage_rows),
                "chosen": chosen,
                "actually_removed": removed_semantic if chosen else None,
            }
        )
    return what_if


def _percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


def duplicates_html(duplicates: dict[str, Any]) -> Html:
    """Duplicate section: max_sim histogram, what-if table and example pairs."""
    what_if = [
        [
            row["eps"],
            row["threshold"],
            row["rows_at_or_above"],
            percent(row["percent_of_stage_input"], 2),
            row["actually_removed"],
        ]
        for row in duplicates["what_if"]
    ]
    classes = ["chosen" if row["chosen"] else "" for row in duplicates["what_if"]]
    lead = (
        f"Semantic dedup compared {duplicates['stage_rows']:,} rows (exact and MinHash duplicates "
        "excluded) and "
        f"removed rows at cosine ≥ {duplicates['threshold']:.4g} (eps {duplicates['eps']:.4g}, keep "
        f"policy {duplicates['keep_policy']}). Judge the threshold from the pairs below."
    )
    return section(
        DuplicatesSection.name,
        DuplicatesSection.title,
        lead,
        figure(
            _max_sim_histogram(duplicates),
            "Rows by max_sim, coloured by outcome; dashed lines mark the thresholds.",
        ),
        heading("What if eps were different?"),
        table(WHAT_IF_HEADERS, what_if, numeric=range(5), row_classes=classes),
        paragraph(duplicates["what_if_note"], "muted"),
        minhash_html(duplicates["minhash"]) if duplicates.get("minhash") else Html(""),
        heading("Example duplicate pairs"),
        *(pair_html(example) for example in duplicates["examples"]),
    )


def _max_sim_histogram(duplicates: dict[str, Any]) -> str:
    bins = duplicates["histogram"]
    series = [
        Series(name.replace("_", " "), bins[name], OUTCOME_COLORS[name])
        for name in CATEGORIES
        if any(bins[name])
    ]
    threshold, near = duplicates["threshold"], duplicates["near_threshold"]
    markers = [Marker(threshold, f"threshold {threshold:.3f}")]
    if near is not None:
        markers.append(Marker(near, f"near {near:.3f}", "#7b4f9d"))
    return histogram(
        bins["bin_edges"],
        series or [Series("rows", [0] * (len(bins["bin_edges"]) - 1))],
        title="Distribution of max_sim",
        markers=markers,
        log=True,
        x_label="max_sim: highest cosine similarity to another compared row",
        y_label="rows (log scale)",
    )
