"""The duplicate section's example pairs: a few removed rows of every kind, and the
semantic duplicates closest to the threshold, each beside its kept representative (with
their cosine, or for MinHash duplicates the Jaccard of their shingle sets)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa

from batchcraft.dataset import schema
from batchcraft.report.charts.svg import esc
from batchcraft.report.html import Html, badge, text_block
from batchcraft.report.sampling import GroupedSample

EXAMPLE_GROUPS = ("exact", "minhash", "near", "semantic", "closest to threshold")
_KINDS = EXAMPLE_GROUPS[:4]  # the groups that are a dup_kind
_CLOSEST = EXAMPLE_GROUPS.index("closest to threshold")
EXAMPLES_PER_GROUP = 3


class PairSample:
    """Samples duplicates per kind at random, plus the semantic ones with the lowest max_sim.

    Args:
        seed: Seed of the random sampling keys.
    """

    def __init__(self, seed: int = 0) -> None:
        self.samples = GroupedSample(EXAMPLES_PER_GROUP)
        self._rng = np.random.default_rng(seed)

    def offer(
        self,
        batch: pa.RecordBatch,
        kinds: np.ndarray,
        max_sim: np.ndarray,
        jaccard_columns: tuple[str, ...] = (),
    ) -> None:
        """Offer one batch's duplicates (``kinds`` and ``max_sim`` are its decoded columns;
        ``jaccard_columns`` names ``dup_jaccard`` when the batch has it)."""
        group = np.select([kinds == kind for kind in _KINDS], range(len(_KINDS)), -1)
        jaccard = np.full(batch.num_rows, np.nan)
        if jaccard_columns:
            column = batch[schema.DUP_JACCARD]
            jaccard = column.to_numpy(zero_copy_only=False).astype(np.float64)
        duplicates = np.flatnonzero(group >= 0)
        self.samples.offer(
            group[duplicates],
            self._rng.random(len(duplicates)),
            _payload(batch, duplicates, kinds, max_sim, jaccard),
        )
        semantic = np.flatnonzero((kinds == "semantic") & ~np.isnan(max_sim))
        self.samples.offer(
            np.full(len(semantic), _CLOSEST),
            max_sim[semantic],
            _payload(batch, semantic, kinds, max_sim, jaccard),
        )

    def sample_ids(self) -> list[str]:
        """Ids of the sampled duplicates and of their kept representatives."""
        rows = self.samples.rows()
        return [row["id"] for row in rows] + [row["dup_of"] for row in rows if row["dup_of"]]


def _payload(
    batch: pa.RecordBatch,
    rows: np.ndarray,
    kinds: np.ndarray,
    max_sim: np.ndarray,
    jaccard: np.ndarray,
) -> dict[str, Any]:
    return {
        "id": batch[schema.ID].take(rows),
        "dup_of": batch[schema.DUP_OF].take(rows),
        "max_sim": max_sim[rows],
        "dup_kind": kinds[rows],
        "jaccard": jaccard[rows],
    }


def examples_json(
    sample: PairSample,
    fetched: dict[str, dict[str, Any]],
    threshold: float,
    minhash_threshold: float | None = None,
) -> list[dict[str, Any]]:
    """The sampled pairs with both texts and their cosine recomputed from the embeddings
    (for MinHash duplicates, which carry their representative's vectors, their Jaccard).

    Args:
        sample: The sampled duplicates.
        fetched: Rows fetched by id (``text``, ``source``, ``embedding``).
        threshold: The semantic-dedup threshold (a pair below it is flagged).
        minhash_threshold: The MinHash Jaccard threshold (a pair below it is flagged).
    """
    examples = []
    shown: set[str] = set()
    for row in sample.samples.rows():
        if row["id"] in shown:  # a borderline pair may also be a random one
            continue
        shown.add(row["id"])
        duplicate = fetched.get(row["id"], {})
        representative = fetched.get(row["dup_of"] or "", {})
        similarity = _cosine(duplicate.get("embedding"), representative.get("embedding"))
        limit = threshold if row["dup_kind"] != "exact" else 1.0
        if row["dup_kind"] == "minhash":
            similarity = None if math.isnan(row["jaccard"]) else round(float(row["jaccard"]), 4)
            limit = minhash_threshold if minhash_threshold is not None else 0.0
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


def _below_threshold_note(example: dict[str, Any]) -> str:
    if not example.get("below_threshold"):
        return ""
    return ' <span class="bad">· below the threshold: check the pipeline\'s dup_of</span>'


def pair_html(example: dict[str, Any]) -> Html:
    """One pair side by side: the removed row and its kept representative."""
    similarity = example["similarity"]
    measure = "Jaccard" if example["dup_kind"] == "minhash" else "cosine"
    facts = (
        f"{example['group']} · {measure} to representative "
        f"{'n/a' if similarity is None else f'{similarity:.4f}'} · max_sim {example['max_sim']}"
    )
    return Html(
        f'<div class="pair"><div class="head">{badge(example["dup_kind"], example["dup_kind"])}'
        f"{esc(facts)}{_below_threshold_note(example)}</div>"
        f"<div>{badge('removed')}{badge(example['source'] or '?')}{text_block(example['text'], example['pair_text'])}</div>"
        f"<div>{badge('kept', 'kept')}{badge(example['representative_source'] or '?')}"
        f"{text_block(example['representative_text'], example['representative_pair_text'])}</div></div>"
    )
