"""`coreset`: CREST mini-batch coresets with the CoLM options for data mixtures."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from batchcraft.errors import ConfigError
from batchcraft.selectors.base import BaseSelector, MissingColumnsError, Selection, check_range
from batchcraft.selectors.facility_location import distance_similarity, facility_location
from batchcraft.selectors.pool import Pool


@dataclass(frozen=True)
class CoresetSelector(BaseSelector):
    """Weighted facility-location medoids of a random pool (CREST; CoLM for mixtures).

    CREST (Yang et al., "Towards Sustainable Learning: Coresets for
    Data-efficient Deep Learning", ICML 2023): from a random pool
    ``pool_multiplier``× the batch size, pick the batch as the facility-location
    medoids of per-example gradient proxies (lazy greedy) and weight each medoid
    by the number of pool rows it represents, so the weighted batch gradient
    approximates the pool's. Weights sum to the pool size; train on
    ``Σ w_i loss_i / Σ w_i``.

    CoLM (Nguyen et al., "Mini-batch Coresets for Memory-efficient Language
    Model Training on Data Mixtures", ICLR 2025): rows of sources holding less
    than ``small_source_share`` of the pool are always kept (weight 1); the
    remaining budget is split over the large sources in proportion to their
    size, with a coreset per source. With trainer gradient sketches and the
    optimiser's Adam moments, features are normalised like an Adam update,
    ``(β1·m + (1−β1)·g) / (√(β2·v + (1−β2)·g²) + ε)``, and optionally
    sparsified to the ``sketch_dimensions`` largest-magnitude coordinates.

    The greedy is lazy; with ``greedy_epsilon`` (default 0.01) each step
    considers a random sample of the rows ("lazier than lazy greedy"), which
    keeps ≥ 99% of the exact greedy objective at a fraction of the cost on
    unclustered data; None gives the exact lazy greedy.

    Columns: ``embeddings`` (default proxy), or ``gradient_sketches`` (used when
    present; e.g. last-layer gradients ``softmax − one_hot``); ``sources`` for
    the CoLM rule; pool-level ``gradient_first_moment``/``gradient_second_moment``.

    Example:
        >>> selector = CoresetSelector(pool_multiplier=4)
        >>> pool = Pool(embeddings=np.random.default_rng(0).normal(size=(64, 8)))
        >>> selection = selector.select(pool, 16, np.random.default_rng(0))
        >>> float(selection.weights.sum())
        64.0
    """

    name: ClassVar[str] = "coreset"
    pool_multiplier: float = 10.0
    features: Literal["auto", "embeddings", "gradient_sketches"] = "auto"
    small_source_share: float = 0.0
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_epsilon: float = 1e-8
    sketch_dimensions: int | None = None
    greedy_epsilon: float | None = 0.01

    def __post_init__(self) -> None:
        super().__post_init__()  # types, and features one of its Literal's values
        check_range("pool_multiplier", self.pool_multiplier, 1.0, 1e6)
        check_range("small_source_share", self.small_source_share, 0.0, 1.0, high_inclusive=False)
        for index, beta in enumerate(self.adam_betas):
            check_range(f"adam_betas[{index}]", beta, 0.0, 1.0, high_inclusive=False)
        check_range("adam_epsilon", self.adam_epsilon, 0.0, 1.0, low_inclusive=False)
        if self.greedy_epsilon is not None:
            check_range(
                "greedy_epsilon",
                self.greedy_epsilon,
                0.0,
                1.0,
                low_inclusive=False,
                high_inclusive=False,
            )
        if self.sketch_dimensions is not None and self.sketch_dimensions < 1:
            raise ConfigError(f"sketch_dimensions={self.sketch_dimensions} must be >= 1 or None")

    @property
    def required_columns(self) -> frozenset[str]:
        if self.features == "gradient_sketches":
            return frozenset({"gradient_sketches"})
        return frozenset({"embeddings"})

    @property
    def optional_columns(self) -> frozenset[str]:
        extra = {"sources", "gradient_first_moment", "gradient_second_moment"}
        return frozenset(extra | ({"gradient_sketches"} if self.features == "auto" else set()))

    @property
    def pool_factor(self) -> float:
        return self.pool_multiplier

    def check_columns(self, present: frozenset[str]) -> None:
        if self.features == "auto" and not {"embeddings", "gradient_sketches"} & present:
            raise MissingColumnsError(
                self.name, ["embeddings or gradient_sketches"], sorted(present)
            )
        if self.features != "auto":
            super().check_columns(present)

    def _select(self, pool: Pool, batch_size: int, rng: np.random.Generator) -> Selection:
        features, feature_name = self._features(pool)
        groups, small_rows = self._source_groups(pool)
        all_small_kept = len(small_rows) + len(groups) <= batch_size
        if not all_small_kept:  # no room to keep every small row: one coreset over everything
            groups, small_rows = [np.arange(len(pool))], np.empty(0, dtype=np.int64)
        budgets = _proportional_budgets(
            [len(group) for group in groups], batch_size - len(small_rows)
        )
        picked: list[np.ndarray] = [small_rows]
        weights: list[np.ndarray] = [np.ones(len(small_rows), dtype=np.float32)]
        objective = 0.0
        for group, budget in zip(groups, budgets, strict=True):
            # a group of every row is 0..n-1 in order: no copy of the features needed
            similarity = distance_similarity(
                features if len(group) == len(features) else features[group]
            )
            result = facility_location(similarity, budget, epsilon=self.greedy_epsilon, rng=rng)
            picked.append(group[result.medoids])
            weights.append(result.counts.astype(np.float32))
            objective += result.objective
        indices = np.concatenate(picked)
        order = rng.permutation(len(indices))  # no positional bias from source grouping
        info: dict[str, Any] = {
            "selector": self.name,
            "features": feature_name,
            "pool_size": len(pool),
            "facility_location_objective": objective,
            "small_source_rows": len(small_rows),
            "small_sources_all_kept": all_small_kept,
        }
        return Selection(indices[order], np.concatenate(weights)[order], info)

    def _features(self, pool: Pool) -> tuple[np.ndarray, str]:
        use_sketches = self.features == "gradient_sketches" or (
            self.features == "auto" and pool.gradient_sketches is not None
        )
        if not use_sketches:
            assert pool.embeddings is not None
            return pool.embeddings, "embeddings"
        assert pool.gradient_sketches is not None
        sketches = pool.gradient_sketches
        name = "gradient_sketches"
        first, second = pool.gradient_first_moment, pool.gradient_second_moment
        if first is not None and second is not None:
            beta1, beta2 = self.adam_betas
            numerator = beta1 * first[None, :] + (1 - beta1) * sketches
            denominator = np.sqrt(beta2 * second[None, :] + (1 - beta2) * sketches**2)
            sketches = numerator / (denominator + self.adam_epsilon)
            name = "adam_normalised_gradient_sketches"
        if self.sketch_dimensions is not None and self.sketch_dimensions < sketches.shape[1]:
            magnitude = np.abs(sketches).mean(axis=0)
            keep = np.sort(
                np.argpartition(-magnitude, self.sketch_dimensions - 1)[: self.sketch_dimensions]
            )
            sketches = sketches[:, keep]
        return sketches.astype(np.float32, copy=False), name

    def _source_groups(self, pool: Pool) -> tuple[list[np.ndarray], np.ndarray]:
        """Row groups that get their own coreset, and the rows always kept (CoLM)."""
        everything = np.arange(len(pool), dtype=np.int64)
        if pool.sources is None or self.small_source_share == 0.0:
            return [everything], np.empty(0, dtype=np.int64)
        _, codes, counts = np.unique(pool.sources, return_inverse=True, return_counts=True)
        small = counts < self.small_source_share * len(pool)
        small_rows = everything[small[codes]]
        groups = [everything[codes == code] for code in np.flatnonzero(~small)]
        return groups, small_rows


def _proportional_budgets(sizes: list[int], budget: int) -> list[int]:
    """Split ``budget`` over groups in proportion to ``sizes``: at least 1 and at most size each.

    Callers guarantee ``len(sizes) <= budget``, so every group is represented.
    """
    if not sizes:
        return []
    total = sum(sizes)
    shares = np.asarray(sizes, dtype=np.float64) * budget / total
    budgets = np.clip(np.floor(shares).astype(np.int64), 1, sizes)
    remainder_order = np.argsort(-(shares - budgets), kind="stable")
    for group in remainder_order:
        if budgets.sum() >= budget:
            break
        if budgets[group] < sizes[group]:
            budgets[group] += 1
    return budgets.tolist()
