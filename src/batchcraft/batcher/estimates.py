"""Estimates of trainer feedback for the candidates the trainer has not scored yet.

A trainer reports feedback only for the rows it trained on, once per visit and
possibly a few steps late, but a feedback selector chooses from a pool several
times the batch: most candidates have no report of their own. Selecting among
the reported few would serve those rows again and again; dropping the signal
would serve uniform batches forever. So every unscored candidate gets an
estimate, and each selection records the share that was actually scored
(``info["feedback_scored"]``):

* **Per-row losses** (``learner_losses``): the mean reported loss of the row's
  k-means cluster (the dataset's ``cluster`` column), shrunk towards the mean of
  all reports with the weight of `PRIOR_REPORTS` reports:
  ``(sum_c + PRIOR_REPORTS * mean) / (count_c + PRIOR_REPORTS)``. Rows of one
  cluster are alike, so their losses are too; a cluster with few reports leans
  on the global mean. Without a ``cluster`` column: the global mean.
* **Per-row vectors** (``learner_embeddings``, ``learner_pair_embeddings``,
  ``gradient_sketches``): predicted from the row's curated embedding (the pair
  embedding for the pair tower) by a ridge regression fitted on the scored rows
  (at most `MAX_FIT_ROWS`, refitted as reports accumulate, see
  `RidgeEstimate.stale`). The learner's embeddings and last-layer gradients are
  smooth functions of the input the curated embedding already summarises; a
  linear map from one to the other is cheap and keeps the estimate specific to
  each row. Without the curated column: the cluster mean, else the global mean.

Losses that the trainer reported always win over estimates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

PRIOR_REPORTS = 4.0
"""Weight, in reports, of the global mean in a cluster's loss estimate."""
MAX_FIT_ROWS = 8192
"""Scored rows a ridge regression is fitted on (a seeded sample beyond that)."""
RIDGE_PENALTY = 1e-3
"""Ridge penalty, relative to the mean squared norm of the curated features."""
VECTOR_SOURCES = {
    "learner_embeddings": "embeddings",
    "learner_pair_embeddings": "pair_embeddings",
    "gradient_sketches": "embeddings",
}
"""The curated Pool field each vector feedback is predicted from."""

Curated = Callable[[str], "np.ndarray | None"]


@dataclass
class RidgeEstimate:
    """A fitted linear map from curated features to one vector feedback."""

    weights: np.ndarray  # (d + 1, d'): the last row is the intercept
    fitted_rows: int
    fitted_update: int

    def stale(self, reported_rows: int, update: int) -> bool:
        """Refit once the reports grew by a quarter or 64 updates came in since the fit."""
        return reported_rows >= 1.25 * self.fitted_rows or update - self.fitted_update >= 64

    def predict(self, features: np.ndarray) -> np.ndarray:
        return (features @ self.weights[:-1] + self.weights[-1]).astype(np.float32)


class GroupSums:
    """Running sums and counts of one per-row loss by cluster (one group without clusters).

    Kept up to date by `observe` on every report (O(batch + clusters)), so an estimate
    costs nothing per dataset row; rebuilt from the table when it cannot be trusted
    (after a restore, or a report naming a row twice).
    """

    def __init__(self, groups: np.ndarray, size: int) -> None:
        self.groups = groups
        self.sums = np.zeros(size)
        self.counts = np.zeros(size, dtype=np.int64)

    @classmethod
    def of(cls, table: np.ndarray, groups: np.ndarray) -> GroupSums:
        """The sums of every reported row of ``table``."""
        found = cls(groups, int(groups.max(initial=0)) + 1)
        rows = np.flatnonzero(~np.isnan(table))
        found.add(rows, table[rows], sign=1)
        return found

    def add(self, positions: np.ndarray, values: np.ndarray, sign: int) -> None:
        """Add (``sign`` 1) or remove (-1) ``values[i]`` of the rows ``positions[i]`` that
        hold a number."""
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        known = ~np.isnan(values)
        groups = self.groups[positions[known]]
        size = len(self.sums)
        self.sums += sign * np.bincount(groups, weights=values[known], minlength=size)
        self.counts += sign * np.bincount(groups, minlength=size)

    def estimates(self, positions: np.ndarray) -> np.ndarray:
        """The shrunk group means of the rows ``positions`` (float32)."""
        overall = self.sums.sum() / max(1, int(self.counts.sum()))
        groups = self.groups[positions]
        shrunk = (self.sums[groups] + PRIOR_REPORTS * overall) / (
            self.counts[groups] + PRIOR_REPORTS
        )
        return (
            shrunk.astype(np.float32)
            if len(self.sums) > 1
            else np.full(len(positions), overall, np.float32)
        )


class FeedbackEstimator:
    """Fills the unscored rows of feedback arrays (see the module docstring).

    Args:
        curated: the dataset's Pool field arrays by field name (``embeddings``,
            ``pair_embeddings``), None for a field the dataset lacks.
        clusters: the dataset's ``cluster`` of every row, or None.
        seed: seed of the sample a ridge regression is fitted on.
    """

    def __init__(self, curated: Curated, clusters: np.ndarray | None, seed: int = 0) -> None:
        self._curated = curated
        self._clusters = None if clusters is None else np.asarray(clusters, dtype=np.int64)
        self._seed = seed
        self._ridges: dict[str, RidgeEstimate] = {}
        self._sums: dict[str, GroupSums] = {}  # per 1-D field

    def method(self, name: str) -> str:
        """How unscored rows of ``name`` are estimated (recorded in the selection's info)."""
        if name in VECTOR_SOURCES and self._curated(VECTOR_SOURCES[name]) is not None:
            return "ridge"
        return "cluster_mean" if self._clusters is not None else "global_mean"

    def fill(
        self,
        name: str,
        table: np.ndarray,
        reported: np.ndarray,
        positions: np.ndarray,
        update: int,
    ) -> np.ndarray | None:
        """``table[positions]`` with its unreported rows estimated; None if nothing is
        reported yet.

        Args:
            name: the feedback field.
            table: its values of every dataset row (NaN rows: not reported).
            reported: which rows of ``table`` hold a report.
            positions: the pool's rows.
            update: counts the table's updates (it keys the cached fits).
        """
        if not reported.any():
            return None
        values = table[positions]
        missing = ~reported[positions]
        if not missing.any():
            return values
        values = values.copy()
        targets = positions[missing]
        if values.ndim == 1:
            values[missing] = self._group_sums(name, table).estimates(targets)
        else:
            values[missing] = self._vector_estimates(name, table, reported, update, targets)
        return values

    def observe(
        self, name: str, positions: np.ndarray, before: np.ndarray, after: np.ndarray
    ) -> None:
        """Rows ``positions`` of the 1-D field ``name`` change from ``before`` to ``after``
        (NaN: not reported); call before the table is written."""
        sums = self._sums.get(name)
        if sums is None:
            return  # built from the table when first needed
        if len(np.unique(positions)) != len(positions):  # the last report of a row wins
            del self._sums[name]
            return
        sums.add(positions, before, sign=-1)
        sums.add(positions, after, sign=1)

    def _group_sums(self, name: str, table: np.ndarray) -> GroupSums:
        found = self._sums.get(name)
        if found is None:
            groups = self._clusters if self._clusters is not None else np.zeros(len(table), int)
            found = self._sums[name] = GroupSums.of(table, groups)
        return found

    def _vector_estimates(
        self, name: str, table: np.ndarray, reported: np.ndarray, update: int, targets: np.ndarray
    ) -> np.ndarray:
        features = self._curated(VECTOR_SOURCES.get(name, ""))
        if features is None:
            return self._group_vector_means(table, reported, targets)
        ridge = self._ridges.get(name)
        count = int(reported.sum())
        if ridge is None or ridge.stale(count, update):
            ridge = self._fit(features, table, reported, update)
            self._ridges[name] = ridge
        return ridge.predict(features[targets])

    def _fit(
        self, features: np.ndarray, table: np.ndarray, reported: np.ndarray, update: int
    ) -> RidgeEstimate:
        rows = np.flatnonzero(reported & np.isfinite(features).all(axis=1))
        if len(rows) > MAX_FIT_ROWS:
            rng = np.random.default_rng([self._seed, update])
            rows = np.sort(rng.choice(rows, MAX_FIT_ROWS, replace=False))
        inputs = np.hstack([features[rows], np.ones((len(rows), 1))]).astype(np.float64)
        gram = inputs.T @ inputs
        mean_square_norm = float(np.trace(gram[:-1, :-1])) / max(1, len(rows))
        penalty = RIDGE_PENALTY * max(mean_square_norm, 1e-12) * max(1, len(rows))
        gram[np.arange(len(gram) - 1), np.arange(len(gram) - 1)] += penalty  # not the intercept
        weights = np.linalg.solve(gram, inputs.T @ table[rows].astype(np.float64))
        return RidgeEstimate(weights, int(reported.sum()), update)

    def _group_vector_means(
        self, table: np.ndarray, reported: np.ndarray, targets: np.ndarray
    ) -> np.ndarray:
        overall = table[reported].mean(axis=0)
        if self._clusters is None:
            return np.broadcast_to(overall, (len(targets), table.shape[1])).astype(np.float32)
        estimates = np.empty((len(targets), table.shape[1]), np.float32)
        known = self._clusters[reported]
        for cluster in np.unique(self._clusters[targets]):
            members = table[reported][known == cluster]
            mean = members.mean(axis=0) if len(members) else overall
            estimates[self._clusters[targets] == cluster] = mean
        return estimates
