"""The duplicate section: max_sim distribution, what-if thresholds and example pairs."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batchcraft.dataset.manifest import DedupSettings
from batchcraft.dataset.schema import similarity_threshold
from batchcraft.report.sampling import GroupedSample

BIN_WIDTH = 0.005
NUM_BINS = round(2.0 / BIN_WIDTH)  # max_sim is a cosine: [-1, 1]
MAX_SHOWN_BINS = 120
CATEGORIES = ("kept", "near", "semantic", "removed_other")
WHAT_IF_EPS = (0.001, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3)
EXAMPLE_GROUPS = ("exact", "near", "semantic", "closest to threshold")
EXAMPLES_PER_GROUP = 3
WHAT_IF_NOTE = (
    "Rows whose max_sim reaches the threshold. This is an upper bound of what a re-run "
    "would remove: in every group of mutual duplicates one row is kept, so chain-safe "
    "keep rules remove at most this many."
)


class DuplicateStats:
    """Accumulates the max_sim histogram, what-if counts and duplicate samples.

    Only rows that entered semantic dedup (everything except exact duplicates) count
    towards the histogram and the what-if table.

    Args:
        settings: The dedup parameters recorded in the manifest.
        seed: Seed of the random sampling keys.
    """

    columns: tuple[str, ...] = ("id", "dup_of", "dup_kind", "max_sim", "keep")

    def __init__(self, settings: DedupSettings, seed: int = 0) -> None:
        self.settings = settings
        self.eps_grid = sorted({*WHAT_IF_EPS, round(settings.eps, 6)})
        self.at_or_above = np.zeros(len(self.eps_grid), dtype=np.int64)
        self.histogram = np.zeros((len(CATEGORIES), NUM_BINS), dtype=np.int64)
        self.stage_rows = 0
        self.missing_max_sim = 0
        self.samples = GroupedSample(EXAMPLES_PER_GROUP)
        self._rng = np.random.default_rng(seed)

    def update(self, batch: pa.RecordBatch, shard: int) -> None:
        """Fold one batch into the histogram, the what-if counts and the samples."""
        kinds = pc.fill_null(batch["dup_kind"], "").to_numpy(zero_copy_only=False)
        keep = pc.fill_null(batch["keep"], False).to_numpy(zero_copy_only=False)
        max_sim = batch["max_sim"].to_numpy(zero_copy_only=False).astype(np.float32)
        stage = (kinds != "exact") & ~np.isnan(max_sim)
        self.missing_max_sim += int(np.count_nonzero((kinds != "exact") & np.isnan(max_sim)))
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
        self._offer_samples(batch, kinds, max_sim)

    def _offer_samples(self, batch: pa.RecordBatch, kinds: np.ndarray, max_sim: np.ndarray) -> None:
        group = np.select([kinds == kind for kind in EXAMPLE_GROUPS[:3]], [0, 1, 2], -1)
        duplicates = np.flatnonzero(group >= 0)
        payload = {
            "id": batch["id"].take(duplicates),
            "dup_of": batch["dup_of"].take(duplicates),
            "max_sim": max_sim[duplicates],
            "dup_kind": kinds[duplicates],
        }
        self.samples.offer(group[duplicates], self._rng.random(len(duplicates)), payload)
        semantic = np.flatnonzero((group == 2) & ~np.isnan(max_sim))
        payload = {
            "id": batch["id"].take(semantic),
            "dup_of": batch["dup_of"].take(semantic),
            "max_sim": max_sim[semantic],
            "dup_kind": kinds[semantic],
        }
        self.samples.offer(np.full(len(semantic), 3), max_sim[semantic], payload)

    def sample_ids(self) -> list[str]:
        """Ids of the sampled duplicates and of their kept representatives."""
        rows = self.samples.rows()
        return [row["id"] for row in rows] + [row["dup_of"] for row in rows if row["dup_of"]]


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


def duplicate_section(
    stats: DuplicateStats, fetched: dict[str, dict[str, Any]], removed_semantic: int
) -> dict[str, Any]:
    """The report's duplicate section.

    Args:
        stats: The accumulated duplicate statistics.
        fetched: Rows fetched by id (``text``, ``source``, ``embedding``).
        removed_semantic: Rows the pipeline actually removed in semantic dedup
            (near + semantic), to calibrate the what-if estimate.
    """
    settings = stats.settings
    what_if = []
    for eps, count in zip(stats.eps_grid, stats.at_or_above.tolist(), strict=True):
        chosen = math.isclose(eps, settings.eps, abs_tol=1e-9)
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
    return {
        "eps": settings.eps,
        "threshold": settings.threshold,
        "near_threshold": settings.near_threshold,
        "keep_policy": settings.keep_policy,
        "stage_rows": stats.stage_rows,
        "missing_max_sim": stats.missing_max_sim,
        "histogram": _shown_histogram(stats),
        "what_if": what_if,
        "what_if_note": WHAT_IF_NOTE,
        "examples": _examples(stats, fetched),
    }


def _examples(stats: DuplicateStats, fetched: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    examples = []
    shown: set[str] = set()
    for row in stats.samples.rows():
        if row["id"] in shown:  # a borderline pair may also be a random one
            continue
        shown.add(row["id"])
        duplicate = fetched.get(row["id"], {})
        representative = fetched.get(row["dup_of"] or "", {})
        similarity = _cosine(duplicate.get("embedding"), representative.get("embedding"))
        limit = stats.settings.threshold if row["dup_kind"] != "exact" else 1.0
        examples.append(
            {
                "group": EXAMPLE_GROUPS[row["group"]],
                "dup_kind": row["dup_kind"],
                "id": row["id"],
                "text": duplicate.get("text"),
                "pair_text": duplicate.get("pair_text"),
                "source": duplicate.get("source"),
                "dup_of": row["dup_of"],
                "representative_text": representative.get("text"),
                "representative_pair_text": representative.get("pair_text"),
                "representative_source": representative.get("source"),
                "similarity": similarity,
                "below_threshold": similarity is not None and similarity < limit - 1e-3,
                "max_sim": None if math.isnan(row["max_sim"]) else round(row["max_sim"], 4),
            }
        )
    return examples


def _cosine(left: np.ndarray | None, right: np.ndarray | None) -> float | None:
    if left is None or right is None:
        return None
    norm = float(np.linalg.norm(left) * np.linalg.norm(right))
    return None if norm == 0.0 else round(float(np.dot(left, right)) / norm, 4)


def _percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0
