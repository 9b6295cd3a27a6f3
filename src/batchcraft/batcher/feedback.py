"""`FeedbackTable`: the latest per-example signals reported by the trainer.

Losses and embeddings are stored by dataset position; a row never reported
holds NaN. Selectors see them through `FeedbackTable.pool_fields`, which
leaves a column out until something was reported for it, and then gives every
row of the pool a value: its own report, or for the rows not reported an
estimate (`batchcraft.batcher.estimates`). Without an estimator, unreported
losses get the mean of the reported ones and a matrix is given only when every
row of the pool was reported.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

import numpy as np

from batchcraft.batcher import feedback_sequences as sequences
from batchcraft.batcher.errors import FeedbackError
from batchcraft.batcher.estimates import FeedbackEstimator
from batchcraft.batcher.feedback_sequences import Numbered
from batchcraft.dataset.fields import ROW_FEEDBACK, SCALAR_FEEDBACK, VECTOR_FEEDBACK, feedback_ndim
from batchcraft.errors import truncated_repr


@dataclass(frozen=True)
class PoolFeedback:
    """The feedback Pool fields of one pool, and how much of it the trainer reported.

    Attributes:
        fields: Pool field -> values (arrays with a value for every pool row).
        scored_share: the smallest share, over the per-row fields, of pool rows
            with a report of their own (None when no per-row field is given).
        estimates: per-row field -> how its unreported rows were estimated.
    """

    fields: dict[str, Any]
    scored_share: float | None = None
    estimates: dict[str, str] = dataclass_field(default_factory=dict)

    def info(self) -> dict[str, Any]:
        """What a selection records about the feedback it used (nothing without per-row
        feedback): the scored share and the estimate of each field."""
        if self.scored_share is None:
            return {}
        info: dict[str, Any] = {"feedback_scored": round(self.scored_share, 4)}
        info.update({f"estimate_{name}": method for name, method in self.estimates.items()})
        return info


class FeedbackTable:
    """Per-row feedback arrays of one job, safe to update from several threads.

    Args:
        num_rows: rows of the dataset.
        estimator: estimates the rows not reported (None: the plain rule of the
            module docstring).
    """

    def __init__(self, num_rows: int, estimator: FeedbackEstimator | None = None) -> None:
        self.num_rows = num_rows
        self.estimator = estimator
        self.rows: dict[str, np.ndarray] = {}
        self.scalars: dict[str, float] = {}
        self.vectors: dict[str, np.ndarray] = {}
        self.num_updates = 0
        self.applied: sequences.Applied = {}  # the latest numbered report of each rank
        self.saved: sequences.Applied = {}  # of those, the latest in the job's checkpoint
        self._reported: dict[str, np.ndarray] = {}  # name -> which rows hold a report
        self._lock = threading.Lock()

    def update(
        self,
        positions: np.ndarray,
        rows: dict[str, np.ndarray],
        scalars: dict[str, float] | None = None,
        vectors: dict[str, np.ndarray] | None = None,
        numbered: Numbered | None = None,
    ) -> bool:
        """Record feedback for the rows at ``positions``; whether it was applied (a
        ``numbered`` report already applied is not, `feedback_sequences`).

        Raises:
            FeedbackError: unknown column names, or arrays whose length does
                not match ``positions``.
        """
        positions = np.asarray(positions, dtype=np.int64)
        checked = {name: _check_rows(name, value, len(positions)) for name, value in rows.items()}
        _check_names(scalars or {}, SCALAR_FEEDBACK)
        _check_names(vectors or {}, VECTOR_FEEDBACK)
        moments = {k: np.asarray(v, np.float32) for k, v in (vectors or {}).items()}
        with self._lock:
            if numbered is not None and not sequences.is_new(self.applied, numbered):
                return False
            self._check_moments(checked, moments)
            for name, value in checked.items():
                table = self._table(name, value.shape[1:])
                if self.estimator is not None and value.ndim == 1:
                    self.estimator.observe(name, positions, table[positions], value)
                table[positions] = value
                self._reported_mask(name)[positions] = _has_value(value)
            self.scalars.update({k: float(v) for k, v in (scalars or {}).items()})
            self.vectors.update(moments)
            self.num_updates += 1
            if numbered is not None:
                self.applied[numbered.rank] = (numbered.sender, numbered.sequence)
        return True

    def confirmed(self, rank: int, sender: str, *, saved: bool) -> int:
        """The latest number of ``sender``'s reports for ``rank`` the job holds: in its
        checkpoint if ``saved``, else applied."""
        with self._lock:
            return sequences.confirmed(self.saved if saved else self.applied, rank, sender)

    def mark_saved(self, applied: sequences.Applied) -> None:
        """The job's checkpoint now holds the reports numbered in ``applied``."""
        with self._lock:
            self.saved = dict(applied)

    def _check_moments(self, rows: dict[str, np.ndarray], moments: dict[str, np.ndarray]) -> None:
        """The optimiser moments must be 1-D and as wide as the gradient sketches, whichever
        of them arrives first: a mismatch accepted here would fail every later selection."""
        sketches = rows.get("gradient_sketches", self.rows.get("gradient_sketches"))
        stored = {k: v for k, v in self.vectors.items() if k not in moments}
        for name, vector in {**stored, **moments}.items():
            if vector.ndim != 1:
                raise FeedbackError(f"feedback {name} has shape {vector.shape}; expected 1-D")
            if sketches is not None and len(vector) != sketches.shape[1]:
                raise FeedbackError(
                    f"feedback {name} has {len(vector)} values but gradient_sketches rows "
                    f"have {sketches.shape[1]}"
                )

    def pool_fields(self, positions: np.ndarray, wanted: frozenset[str]) -> PoolFeedback:
        """Feedback Pool fields for the rows at ``positions`` (see module docstring)."""
        fields: dict[str, Any] = {}
        shares: list[float] = []
        estimates: dict[str, str] = {}
        with self._lock:
            for name in sorted(wanted):
                if name in self.rows:
                    value = self._rows_for(name, positions)
                    if value is not None:
                        fields[name] = value
                        share = float(self._reported_mask(name)[positions].mean())
                        shares.append(share if len(positions) else 1.0)
                        if share < 1.0 and self.estimator is not None:
                            estimates[name] = self.estimator.method(name)
                elif name in self.scalars:
                    fields[name] = self.scalars[name]
                elif name in self.vectors:
                    fields[name] = self.vectors[name].copy()
        return PoolFeedback(fields, min(shares) if shares else None, estimates)

    def holds(self, names: frozenset[str]) -> bool:
        """Whether any of the feedback ``names`` was reported."""
        with self._lock:
            return any(name in self.rows or name in self.scalars or name in self.vectors
                       for name in names)  # fmt: skip

    def reported(self, name: str, positions: np.ndarray) -> np.ndarray:
        """Boolean mask: which rows have a reported value for ``name``."""
        with self._lock:
            if name not in self.rows:
                return np.zeros(len(positions), dtype=bool)
            return self._reported_mask(name)[positions]

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Everything as named arrays (for ``np.savez``)."""
        with self._lock:
            arrays = {f"rows/{k}": v.copy() for k, v in self.rows.items()}
            arrays.update({f"vectors/{k}": v.copy() for k, v in self.vectors.items()})
            arrays.update(
                {f"scalars/{k}": np.asarray(v, np.float64) for k, v in self.scalars.items()}
            )
            arrays.update(sequences.to_arrays(self.applied))
        return arrays

    @classmethod
    def from_arrays(
        cls,
        num_rows: int,
        arrays: dict[str, np.ndarray],
        estimator: FeedbackEstimator | None = None,
    ) -> FeedbackTable:
        """Inverse of `to_arrays`.

        Raises:
            ValueError: an array of another shape than `to_arrays` writes (rows of
                another length than ``num_rows``), or of an unknown name; the caller
                names the file (a restored table is never silently cut short).
        """
        table = cls(num_rows, estimator)
        table.applied = sequences.from_arrays(arrays)
        table.saved = dict(table.applied)  # read from a checkpoint: saved
        for key, value in arrays.items():
            kind, _, name = key.partition("/")
            if kind == "rows" and name in ROW_FEEDBACK:
                expected = (num_rows, *value.shape[1:])
                if value.shape != expected or value.ndim != feedback_ndim(name):
                    raise ValueError(
                        f"{key} has shape {value.shape}; expected {num_rows} rows"
                        f" and {feedback_ndim(name)} dimension(s)"
                    )
                table.rows[name] = np.asarray(value, dtype=np.float32)
            elif kind == "vectors" and name in VECTOR_FEEDBACK and value.ndim == 1:
                table.vectors[name] = np.asarray(value, dtype=np.float32)
            elif kind == "scalars" and name in SCALAR_FEEDBACK and value.ndim == 0:
                table.scalars[name] = float(value)
            elif kind != "sequences":
                raise ValueError(f"{key} of shape {value.shape} is not a feedback array")
        return table

    def _table(self, name: str, trailing: tuple[int, ...]) -> np.ndarray:
        table = self.rows.get(name)
        if table is None or table.shape[1:] != trailing:
            table = np.full((self.num_rows, *trailing), np.nan, dtype=np.float32)
            self.rows[name] = table
            self._reported[name] = np.zeros(self.num_rows, dtype=bool)
        return table

    def _reported_mask(self, name: str) -> np.ndarray:
        """Which rows hold a report of ``name`` (call with the lock held)."""
        found = self._reported.get(name)
        if found is None:  # restored from a checkpoint: computed once
            found = _has_value(self.rows[name])
            self._reported[name] = found
        return found

    def _rows_for(self, name: str, positions: np.ndarray) -> np.ndarray | None:
        if self.estimator is not None:
            return self.estimator.fill(
                name, self.rows[name], self._reported_mask(name), positions, self.num_updates
            )
        values = self.rows[name][positions]
        missing = np.isnan(values.reshape(len(positions), -1)).any(axis=1)
        if not missing.any():
            return values
        if values.ndim > 1:
            return None
        known = self.rows[name][~np.isnan(self.rows[name])]
        if known.size == 0:
            return None
        return np.where(missing, np.float32(known.mean()), values).astype(np.float32)


def _check_rows(name: str, value: np.ndarray, count: int) -> np.ndarray:
    if name not in ROW_FEEDBACK:
        raise FeedbackError(
            f"unknown feedback column {truncated_repr(name)}; valid: {list(ROW_FEEDBACK)}"
        )
    array = np.asarray(value, dtype=np.float32)
    expected_ndim = feedback_ndim(name)
    if array.ndim != expected_ndim or array.shape[0] != count:
        raise FeedbackError(
            f"feedback {name} has shape {array.shape}; expected {count} rows"
            f" and {expected_ndim} dimension(s)"
        )
    return array


def _check_names(values: dict[str, Any], valid: tuple[str, ...]) -> None:
    unknown = sorted(set(values) - set(valid))
    if unknown:
        shown = ", ".join(truncated_repr(name) for name in unknown[:5])
        raise FeedbackError(f"unknown feedback values [{shown}]; valid: {list(valid)}")


def _has_value(values: np.ndarray) -> np.ndarray:
    """Which rows of a feedback array hold a value (no NaN)."""
    return ~np.isnan(values.reshape(len(values), -1)).any(axis=1)
