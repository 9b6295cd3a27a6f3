"""`Pool`: the candidate rows a selector chooses from, as column arrays.

Per-row columns (all optional; each selector declares the ones it needs):

======================== =========================== =========================================
field                    shape / type                source
======================== =========================== =========================================
ids                      (n,) str                    dataset ``id``
embeddings               (n, d) float                dataset ``embedding`` (unit norm)
pair_embeddings          (n, d) float                dataset ``pair_embedding``
concepts                 n lists of str, a scipy     dataset ``concepts``
                         sparse (n, c) matrix, or
                         `EncodedConcepts`
sources                  (n,) str                    dataset ``source``
labels                   (n,) int or str             dataset (class / positive id)
reference_losses         (n,) float                  dataset ``ref_loss``
learner_losses           (n,) float                  trainer feedback
learner_embeddings       (n, d') float               trainer feedback (anchor / image tower)
learner_pair_embeddings  (n, d') float               trainer feedback (pair / text tower)
gradient_sketches        (n, g) float                trainer feedback (e.g. last-layer grads)
======================== =========================== =========================================

Pool-level values (not per row), sent by the trainer with its feedback:
``gradient_first_moment`` / ``gradient_second_moment`` ((g,) Adam moment
estimates of the sketched coordinates, for CoLM normalisation) and
``learner_logit_scale`` / ``learner_logit_bias`` (the learner's SigLIP
temperature and bias, for JEST).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import pyarrow as pa

from batchcraft.dataset.arrays import to_matrix
from batchcraft.dataset.fields import COLUMN_POOL_FIELDS, FEEDBACK_FIELDS, MATRIX_POOL_FIELDS
from batchcraft.errors import ConfigError
from batchcraft.selectors.encoded_concepts import EncodedConcepts

ROW_COLUMNS: tuple[str, ...] = (
    "ids",
    "embeddings",
    "pair_embeddings",
    "concepts",
    "sources",
    "labels",
    "reference_losses",
    "learner_losses",
    "learner_embeddings",
    "learner_pair_embeddings",
    "gradient_sketches",
)
"""Per-row columns of a `Pool`, in declaration order."""

FEEDBACK_COLUMNS: frozenset[str] = FEEDBACK_FIELDS
"""Columns that come from the trainer rather than from the curated dataset."""

_MATRIX_COLUMNS = frozenset(
    {
        "embeddings",
        "pair_embeddings",
        "learner_embeddings",
        "learner_pair_embeddings",
        "gradient_sketches",
    }
)
_FLOAT_VECTOR_COLUMNS = frozenset({"reference_losses", "learner_losses"})


@dataclass(frozen=True, eq=False)
class Pool:
    """Candidate rows for one selection, as aligned column arrays.

    Every per-row column given must have the same number of rows. Matrices
    are converted to float32, losses to float32 vectors.

    Example:
        >>> pool = Pool(embeddings=np.eye(4, dtype=np.float32))
        >>> len(pool)
        4
    """

    ids: Any = None
    embeddings: np.ndarray | None = None
    pair_embeddings: np.ndarray | None = None
    concepts: Any = None
    sources: Any = None
    labels: Any = None
    reference_losses: np.ndarray | None = None
    learner_losses: np.ndarray | None = None
    learner_embeddings: np.ndarray | None = None
    learner_pair_embeddings: np.ndarray | None = None
    gradient_sketches: np.ndarray | None = None
    gradient_first_moment: np.ndarray | None = None
    gradient_second_moment: np.ndarray | None = None
    learner_logit_scale: float | None = None
    learner_logit_bias: float | None = None

    def __post_init__(self) -> None:
        for name in _MATRIX_COLUMNS:
            value = getattr(self, name)
            if value is not None:
                matrix = np.asarray(value, dtype=np.float32)
                if matrix.ndim != 2:
                    raise ConfigError(f"Pool.{name} must be 2-D (rows, dim), got {matrix.shape=}")
                object.__setattr__(self, name, matrix)
        for name in _FLOAT_VECTOR_COLUMNS | {"gradient_first_moment", "gradient_second_moment"}:
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, np.asarray(value, dtype=np.float32).reshape(-1))
        for name in ("ids", "sources", "labels"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, np.ndarray):
                object.__setattr__(self, name, np.asarray(value))
        lengths = {name: _row_count(getattr(self, name)) for name in self.present_columns()}
        if len(set(lengths.values())) > 1:
            raise ConfigError(f"Pool columns must have the same number of rows, got {lengths}")

    def __len__(self) -> int:
        for name in ROW_COLUMNS:
            value = getattr(self, name)
            if value is not None:
                return _row_count(value)
        return 0

    def present_columns(self) -> frozenset[str]:
        """Names of the per-row columns that are set."""
        return frozenset(name for name in ROW_COLUMNS if getattr(self, name) is not None)

    def has(self, column: str) -> bool:
        """Whether the per-row column or pool-level value ``column`` is set."""
        return getattr(self, column) is not None

    def take(self, indices: np.ndarray) -> Pool:
        """The rows at ``indices`` (in that order) as a new Pool; pool-level values are kept."""
        positions = np.asarray(indices, dtype=np.int64)
        subset: dict[str, Any] = {}
        for name in self.present_columns():
            value = getattr(self, name)
            if isinstance(value, np.ndarray | EncodedConcepts) or hasattr(value, "tocsr"):
                subset[name] = value[positions]
            else:
                subset[name] = [value[int(position)] for position in positions]
        return replace(self, **subset)

    @classmethod
    def from_arrow(cls, table: pa.Table | pa.RecordBatch, **feedback: Any) -> Pool:
        """Build a Pool from curated-dataset rows (DESIGN.md column names) plus trainer feedback.

        Args:
            table: rows with any of ``id``, ``embedding``, ``pair_embedding``,
                ``concepts``, ``source``, ``label``, ``ref_loss``.
            **feedback: Pool fields from the trainer, e.g. ``learner_losses=...``.
        """
        valid = {field.name for field in fields(cls)}
        unknown = sorted(set(feedback) - valid)
        if unknown:
            raise ConfigError(f"unknown Pool fields {unknown}; valid: {sorted(valid)}")
        columns = {
            field: column_to_field(table.column(column), field, encode=False)
            for column, field in COLUMN_POOL_FIELDS.items()
            if column in table.schema.names
        }
        return cls(**columns, **feedback)


def _row_count(value: Any) -> int:
    shape = getattr(value, "shape", None)
    return int(shape[0]) if shape is not None else len(value)


def column_to_field(column: pa.Array | pa.ChunkedArray, field: str, *, encode: bool = True) -> Any:
    """One curated-dataset column as what `Pool` expects for ``field``.

    Vectors become float32 matrices (`batchcraft.dataset.arrays.to_matrix`: a
    null row is a row of NaN), ``reference_losses`` a float32 vector, concepts
    `EncodedConcepts` (``encode``) or lists of strings.
    """
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if field in MATRIX_POOL_FIELDS:
        return to_matrix(array)
    if field == "concepts":
        if encode:
            return EncodedConcepts.from_arrow(array)
        return [list(row or []) for row in array.to_pylist()]
    if field == "reference_losses":
        return np.asarray(array.to_numpy(zero_copy_only=False), dtype=np.float32)
    return array.to_numpy(zero_copy_only=False)
