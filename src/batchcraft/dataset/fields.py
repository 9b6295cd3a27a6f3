"""How dataset columns and trainer feedback become the fields of a selector's `Pool`.

A selector sees a `batchcraft.selectors.Pool`: per-row arrays named after what
they hold (``embeddings``, ``learner_losses`` ...). Some come from the curated
dataset's columns, the others from the trainer's feedback; this module names
both, once.
"""

from __future__ import annotations

from batchcraft.dataset import schema

POOL_FIELD_COLUMNS: dict[str, str] = {
    "ids": schema.ID,
    "embeddings": schema.EMBEDDING,
    "pair_embeddings": schema.PAIR_EMBEDDING,
    "concepts": schema.CONCEPTS,
    "sources": schema.SOURCE,
    "labels": schema.LABEL,
    "reference_losses": schema.REF_LOSS,
}
"""Pool field -> the curated-dataset column it is read from."""

COLUMN_POOL_FIELDS: dict[str, str] = {column: f for f, column in POOL_FIELD_COLUMNS.items()}
"""Curated-dataset column -> Pool field (the inverse of `POOL_FIELD_COLUMNS`)."""

MATRIX_POOL_FIELDS: frozenset[str] = frozenset({"embeddings", "pair_embeddings"})
"""Pool fields read from vector columns (converted with `batchcraft.dataset.arrays.to_matrix`)."""

ROW_FEEDBACK: tuple[str, ...] = (
    "learner_losses",
    "learner_embeddings",
    "learner_pair_embeddings",
    "gradient_sketches",
)
"""Per-row feedback a trainer reports: ``learner_losses`` is 1-D, the others 2-D."""

SCALAR_FEEDBACK: tuple[str, ...] = ("learner_logit_scale", "learner_logit_bias")
"""Pool-level numbers a trainer reports (its SigLIP temperature and bias, for JEST)."""

VECTOR_FEEDBACK: tuple[str, ...] = ("gradient_first_moment", "gradient_second_moment")
"""Pool-level vectors a trainer reports (Adam moments of the sketched coordinates, for CoLM)."""

FEEDBACK_FIELDS: frozenset[str] = frozenset(ROW_FEEDBACK + SCALAR_FEEDBACK + VECTOR_FEEDBACK)
"""Every Pool field that comes from the trainer rather than from the curated dataset."""


def feedback_ndim(name: str) -> int:
    """Dimensions of one row-feedback array: 1 for losses, 2 for the vectors."""
    return 1 if name == "learner_losses" else 2
