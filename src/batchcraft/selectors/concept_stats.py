"""Concept annotations as integer rows, and the batch concept metrics CABS reports."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from batchcraft.errors import ConfigError
from batchcraft.selectors.base import sorted_unique
from batchcraft.selectors.encoded_concepts import EncodedConcepts


@dataclass(frozen=True, eq=False)
class ConceptRows:
    """Each row's distinct concept ids (CSR layout), with the vocabulary and frequencies.

    Attributes:
        row_of: (nnz,) row of each (row, concept) entry, sorted by row.
        concept_of: (nnz,) concept id of each entry.
        vocabulary: concept name of each id.
        concept_counts: (num_concepts,) rows of the pool carrying each concept.
        concepts_per_row: (num_rows,) distinct concepts per row.
    """

    row_of: np.ndarray
    concept_of: np.ndarray
    vocabulary: list[str]
    concept_counts: np.ndarray
    concepts_per_row: np.ndarray

    @property
    def num_rows(self) -> int:
        return len(self.concepts_per_row)

    @functools.cached_property
    def row_concepts(self) -> list[list[int]]:
        """Per row, its sorted distinct concept ids (for Python loops)."""
        bounds = np.concatenate([[0], np.cumsum(self.concepts_per_row)]).tolist()
        flat = self.concept_of.tolist()
        return [flat[bounds[row] : bounds[row + 1]] for row in range(self.num_rows)]

    def row_sums(self, per_concept: np.ndarray) -> np.ndarray:
        """Σ over each row's concepts of ``per_concept[c]``, for all rows at once."""
        return np.bincount(
            self.row_of, weights=per_concept[self.concept_of], minlength=self.num_rows
        )

    @classmethod
    def from_pool_column(cls, concepts: Any) -> ConceptRows:
        """From lists of concept names, `EncodedConcepts`, or a scipy sparse (rows, concepts) indicator matrix."""
        if isinstance(concepts, EncodedConcepts):
            num_rows = len(concepts)
            rows, codes, names = concepts.row_codes()
            vocabulary = [str(name) for name in names]
        elif hasattr(concepts, "tocoo"):
            matrix = concepts.tocoo()
            keep = matrix.data != 0
            rows, codes = matrix.row[keep].astype(np.int64), matrix.col[keep].astype(np.int64)
            num_rows, vocabulary = (
                matrix.shape[0],
                [str(column) for column in range(matrix.shape[1])],
            )
        elif isinstance(concepts, Sequence | np.ndarray):
            num_rows = len(concepts)
            rows, codes, vocabulary = _encode_lists(concepts)
        else:
            raise ConfigError(
                f"concepts must be lists of strings or a sparse matrix, got {type(concepts)}"
            )
        width = max(len(vocabulary), 1)
        entries = sorted_unique(rows * width + codes)  # distinct, sorted by row then concept
        row_of, concept_of = entries // width, entries % width
        per_row = np.bincount(row_of, minlength=num_rows)
        counts = np.bincount(concept_of, minlength=len(vocabulary))
        return cls(row_of, concept_of, vocabulary, counts, per_row)


def _encode_lists(concepts: Sequence[Any] | np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
    lengths = [0 if row is None else len(row) for row in concepts]
    ids: dict[Any, int] = {}
    setdefault = ids.setdefault
    codes = [setdefault(name, len(ids)) for row in concepts if row is not None for name in row]
    rows = np.repeat(np.arange(len(concepts), dtype=np.int64), lengths)
    return rows, np.asarray(codes, dtype=np.int64), [str(name) for name in ids]


def concept_metrics(rows: ConceptRows, indices: np.ndarray, targets: np.ndarray) -> dict[str, Any]:
    """Concept statistics of the batch ``indices``.

    Returns:
        ``concept_entropy`` (nats, of the batch's concept-occurrence
        distribution), ``kl_to_target`` (KL(batch ‖ target), nats),
        ``concepts_per_sample``, ``distinct_concepts``, ``long_tail_share``
        (share of occurrences from the rarer half of the pool's concepts).
    """
    in_batch = np.zeros(rows.num_rows, dtype=bool)
    in_batch[indices] = True
    batch_counts = np.bincount(
        rows.concept_of[in_batch[rows.row_of]], minlength=len(rows.vocabulary)
    )
    total = batch_counts.sum()
    metrics: dict[str, Any] = {
        "concepts_per_sample": float(rows.concepts_per_row[indices].mean())
        if len(indices)
        else 0.0,
        "distinct_concepts": int((batch_counts > 0).sum()),
    }
    if total == 0:
        return {**metrics, "concept_entropy": 0.0, "kl_to_target": 0.0, "long_tail_share": 0.0}
    batch_share = batch_counts / total
    present = batch_share > 0
    metrics["concept_entropy"] = float(-(batch_share[present] * np.log(batch_share[present])).sum())
    if targets.sum() > 0:
        target_share = np.maximum(targets / targets.sum(), 1e-12)
        ratio = batch_share[present] / target_share[present]
        metrics["kl_to_target"] = float((batch_share[present] * np.log(ratio)).sum())
    else:
        metrics["kl_to_target"] = 0.0
    seen = np.flatnonzero(rows.concept_counts > 0)
    rare_half = seen[np.argsort(rows.concept_counts[seen], kind="stable")[: len(seen) // 2]]
    metrics["long_tail_share"] = float(batch_counts[rare_half].sum() / total)
    return metrics
