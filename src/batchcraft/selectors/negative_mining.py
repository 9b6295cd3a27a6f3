"""False-negative masks for in-batch negatives, and explicit ANN-mined hard negatives."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from batchcraft._deps import require

SAME_POSITIVE_COSINE = 1.0 - 1e-5
"""Two positives at or above this cosine are the same text."""


def _unit(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


def false_negative_mask(
    labels: Any | None,
    anchors: np.ndarray | None,
    positives: np.ndarray | None,
    margin: float | None = None,
) -> np.ndarray:
    """``mask[i, j]`` is True when row j's positive must not be a negative for anchor i.

    A pair is an accidental positive when the rows share a label, when their
    positives are the same text (cosine ≥ `SAME_POSITIVE_COSINE`), or, with
    ``margin``, when anchor i scores row j's positive within ``margin`` of its
    own positive. The diagonal (each anchor's own positive) is False: it is
    the positive, not a negative to mask.

    Args:
        labels: (b,) hashable label (or positive id) per row, or None.
        anchors: (b, d) anchor embeddings, needed for ``margin``.
        positives: (b, d) positive embeddings, or None.
        margin: the false-negative guard; None to skip it.
    """
    return InBatchScores(anchors, positives).false_negative_mask(labels, margin)


def top_negative_similarity(
    anchors: np.ndarray, candidates: np.ndarray, mask: np.ndarray, top: int = 10
) -> float:
    """Mean over anchors of the mean cosine of their ``top`` hardest unmasked in-batch negatives."""
    return InBatchScores(anchors, candidates).top_negative_similarity(mask, top)


class InBatchScores:
    """Cosines within a batch of anchors and positives, each computed once and shared.

    Args:
        anchors: (b, d) anchor embeddings, or None.
        positives: (b, d) positive embeddings, or None (negatives are then
            the other anchors, in `top_negative_similarity`).
    """

    def __init__(self, anchors: np.ndarray | None, positives: np.ndarray | None) -> None:
        self.anchors = anchors
        self.positives = positives

    @functools.cached_property
    def unit_anchors(self) -> np.ndarray:
        """The anchors at unit norm."""
        assert self.anchors is not None
        return _unit(self.anchors)

    @functools.cached_property
    def unit_positives(self) -> np.ndarray:
        """The positives (the anchors when there are none) at unit norm."""
        positives = self.anchors if self.positives is None else self.positives
        assert positives is not None
        return _unit(positives)

    @functools.cached_property
    def anchor_scores(self) -> np.ndarray:
        """(b, b) cosine of anchor i and positive j; shared, so callers must not modify it."""
        return self.unit_anchors @ self.unit_positives.T

    def false_negative_mask(self, labels: Any | None, margin: float | None) -> np.ndarray:
        """See `false_negative_mask`."""
        positives = self.positives
        rows = next((x for x in (labels, positives, self.anchors) if x is not None), ())
        mask = np.zeros((len(rows), len(rows)), dtype=bool)
        if labels is not None:
            _, codes = np.unique(np.asarray(labels), return_inverse=True)
            mask |= codes[:, None] == codes[None, :]
        if positives is not None:
            unit_positives = self.unit_positives
            mask |= unit_positives @ unit_positives.T >= SAME_POSITIVE_COSINE
            if margin is not None and self.anchors is not None:
                scores = self.anchor_scores
                mask |= scores >= np.diag(scores)[:, None] - margin
        np.fill_diagonal(mask, False)
        return mask

    def top_negative_similarity(self, mask: np.ndarray, top: int = 10) -> float:
        """See `top_negative_similarity` (``candidates`` are the positives)."""
        scores = self.anchor_scores.copy()
        scores[mask] = -np.inf
        np.fill_diagonal(scores, -np.inf)
        count = min(top, scores.shape[1] - 1)
        if count < 1:
            return 0.0
        # the `count` largest per row, largest first: a partition, then a sort of those only
        hardest = -np.sort(np.partition(-scores, count - 1, axis=1)[:, :count], axis=1)
        hardest = np.where(np.isfinite(hardest), hardest, np.nan)
        return float(np.nanmean(hardest)) if np.isfinite(hardest).any() else 0.0


def mine_hard_negatives(
    anchors: np.ndarray,
    positives: np.ndarray,
    num_negatives: int,
    skip_top: int = 0,
    margin: float = 0.0,
    labels: Any | None = None,
    anchor_rows: np.ndarray | None = None,
) -> np.ndarray:
    """Per anchor, ``num_negatives`` hard negatives among all rows' positives, by FAISS.

    Row i's positive is ``positives[i]``. For each anchor the nearest
    positives are ranked by inner product; its own positive, rows sharing its
    label or its positive text, and anything scoring above its positive's
    score minus ``margin`` (the false-negative guard) are dropped; then the
    ``skip_top`` best-ranked survivors are skipped (likely unlabelled
    positives) and the next ``num_negatives`` kept.

    Args:
        anchor_rows: the rows to mine for (default: all).

    Returns:
        (len(anchor_rows), num_negatives) int64 row indices, -1 where too few
        candidates survive.
    """
    faiss = require("faiss")
    unit_positives = _unit(positives)
    rows = np.arange(len(anchors)) if anchor_rows is None else np.asarray(anchor_rows, np.int64)
    unit_anchors = _unit(anchors[rows])
    index = faiss.IndexFlatIP(unit_positives.shape[1])
    index.add(unit_positives)
    depth = min(len(unit_positives), 2 * (num_negatives + skip_top) + 16)
    scores, found = index.search(unit_anchors, depth)
    own_scores = np.einsum("ij,ij->i", unit_anchors, unit_positives[rows])
    valid = found >= 0
    found = np.where(valid, found, 0)
    keep = valid & (found != rows[:, None]) & (scores < own_scores[:, None] - margin)
    if labels is not None:
        codes = np.unique(np.asarray(labels), return_inverse=True)[1]
        keep &= codes[found] != codes[rows][:, None]
    same_text = np.einsum("ikd,id->ik", unit_positives[found], unit_positives[rows])
    keep &= same_text < SAME_POSITIVE_COSINE
    result = np.full((len(rows), num_negatives), -1, dtype=np.int64)
    for position in range(len(rows)):
        survivors = found[position][keep[position]][skip_top : skip_top + num_negatives]
        result[position, : len(survivors)] = survivors
    return result
