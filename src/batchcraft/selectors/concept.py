"""`concept`: CABS concept-aware batch sampling, diversity (DM) and frequency (FM) maximisation."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from batchcraft.errors import ConfigError, truncated_repr
from batchcraft.selectors.base import BaseSelector, Selection, check_range
from batchcraft.selectors.concept_stats import ConceptRows, concept_metrics
from batchcraft.selectors.pool import Pool


@dataclass(frozen=True)
class ConceptSelector(BaseSelector):
    """Keep ``1 − filter_ratio`` of a super-batch by its concept annotations (CABS).

    CABS ("Concept-Aware Batch Sampling Improves Language-Image Pretraining",
    2025) draws a super-batch of ``batch_size / (1 − filter_ratio)`` rows
    (the paper's best: filter 80%) and keeps a batch by one of two rules:

    - ``"diversity"`` (CABS-DM): every concept gets a target count in the batch,
      ``target_c = p_c · batch_size · mean concepts per row`` (``p`` uniform over
      the pool's concepts unless ``target_distribution`` is given), and a cap
      ``max(1, ceil(cap_factor · target_c))``. Lazy greedy (a heap of stale
      gains) adds the row whose concepts are furthest below target, weighting
      each concept by its rarity ``log(1 + pool_rows / concept_rows)``; a row is
      ineligible once adding it would exceed any of its concepts' caps. When no
      eligible row still has a deficit, the rest is filled at random from
      eligible rows (and only if those run out, from the others; counted in
      ``info["rows_over_cap"]``).
    - ``"frequency"`` (CABS-FM): the rows with the most distinct concepts, ties at random.

    Columns: ``concepts`` (lists of strings, or a scipy sparse (n, num_concepts) matrix).

    Example:
        >>> selector = ConceptSelector(variant="diversity", filter_ratio=0.5)
        >>> pool = Pool(concepts=[["cat"], ["cat"], ["cat"], ["dog"]])
        >>> sorted(selector.select(pool, 2, np.random.default_rng(0)).indices.tolist())[-1]
        3
    """

    name: ClassVar[str] = "concept"
    variant: Literal["diversity", "frequency"] = "diversity"
    filter_ratio: float = 0.8
    target_distribution: Mapping[str, float] | None = None
    cap_factor: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()  # types, and variant one of its Literal's values
        check_range("filter_ratio", self.filter_ratio, 0.0, 1.0, high_inclusive=False)
        check_range("cap_factor", self.cap_factor, 1.0, math.inf)
        if self.target_distribution is not None:
            bad = {key: value for key, value in self.target_distribution.items() if not value >= 0}
            if bad or not sum(self.target_distribution.values()) > 0:
                raise ConfigError(
                    f"target_distribution weights must be >= 0 with a positive sum, got {truncated_repr(bad) if bad else 'sum 0'}"
                )

    @property
    def required_columns(self) -> frozenset[str]:
        return frozenset({"concepts"})

    @property
    def pool_factor(self) -> float:
        return 1.0 / (1.0 - self.filter_ratio)

    def _select(self, pool: Pool, batch_size: int, rng: np.random.Generator) -> Selection:
        rows = ConceptRows.from_pool_column(pool.concepts)
        targets = self._targets(rows, batch_size)
        info: dict[str, Any] = {"selector": self.name, "variant": self.variant}
        if self.variant == "frequency":
            order = np.lexsort((rng.random(rows.num_rows), -rows.concepts_per_row))
            indices = order[:batch_size]
        else:
            caps = np.maximum(1, np.ceil(self.cap_factor * targets - 1e-9)).astype(np.int64)
            indices, over_cap = _diversity_greedy(rows, targets, caps, batch_size, rng)
            info["rows_over_cap"] = over_cap
        info.update(concept_metrics(rows, indices, targets))
        return Selection(indices, None, info)

    def _targets(self, rows: ConceptRows, batch_size: int) -> np.ndarray:
        """Per-concept target counts in the batch."""
        if self.target_distribution is None:
            shares = (rows.concept_counts > 0).astype(np.float64)
        else:
            shares = np.array([self.target_distribution.get(name, 0.0) for name in rows.vocabulary])
        if shares.sum() == 0:
            return np.zeros(len(rows.vocabulary))
        mean_concepts = float(rows.concepts_per_row.mean())
        return shares / shares.sum() * batch_size * mean_concepts


class _ConceptCounts:
    """Concept counts of the batch being built, and each row's priority key.

    Keys order rows lexicographically by phase, then score (lower is better):
    0 = eligible with a deficit (score ``1 / (1 + gain)``), 1 = eligible
    without one (a random score: the paper's random fill), 2 = over a cap
    (score grows with how far past the caps the row would go). Keys only grow
    as rows are added, so stale keys are lower bounds and lazy evaluation is exact.

    A row's key depends only on the counts of its own concepts, and keys of
    any subset of rows are computed with the same per-row sums (in concept
    order) as those of all rows, so they are equal to the last bit.
    """

    def __init__(
        self, rows: ConceptRows, targets: np.ndarray, caps: np.ndarray, rng: np.random.Generator
    ) -> None:
        rarity = np.log1p(rows.num_rows / np.maximum(rows.concept_counts, 1))
        # deficit per unit of target, times rarity: "furthest below target, rare first"
        self.weight = np.where(targets > 0, rarity / np.maximum(targets, 1e-12), 0.0)
        self.targets = targets.astype(np.float64)
        self.caps = caps.astype(np.float64)
        self.random_keys = 2.0 + rng.random(rows.num_rows)  # phase 1: the random fill
        self.rows = rows
        self.counts = np.zeros(len(targets))
        self.starts = np.concatenate([[0], np.cumsum(rows.concepts_per_row)])
        self._terms: tuple[np.ndarray, np.ndarray | None, np.ndarray | None] | None = None
        # plain lists for the one-row Python path: numpy calls on 1-5 elements are slower
        self.count_list = [0.0] * len(targets)
        self.target_list = self.targets.tolist()
        self.cap_list = self.caps.tolist()
        self.weight_list = self.weight.tolist()
        self.random_key_list = self.random_keys.tolist()
        self._flat_concepts = rows.concept_of.tolist()
        self._start_list = self.starts.tolist()
        self._row_concepts: list[list[int] | None] = [None] * rows.num_rows

    def concepts(self, row: int) -> list[int]:
        """The row's distinct concept ids (built on first use: few rows are ever looked at)."""
        found = self._row_concepts[row]
        if found is None:
            starts = self._start_list
            found = self._row_concepts[row] = self._flat_concepts[starts[row] : starts[row + 1]]
        return found

    def all_keys(self) -> np.ndarray:
        """Current key of every row, vectorised."""
        rows = self.rows
        return self._keys(rows.row_of, rows.concept_of, rows.num_rows, self.random_keys)

    def keys_of(self, subset: np.ndarray) -> np.ndarray:
        """Current keys of the rows ``subset`` (the same values as ``all_keys()[subset]``)."""
        lengths = self.rows.concepts_per_row[subset]
        local_row = np.repeat(np.arange(len(subset)), lengths)
        # the subset's entries, row after row, in concept order
        entries = np.arange(len(local_row)) + np.repeat(
            self.starts[subset] - (np.cumsum(lengths) - lengths), lengths
        )
        return self._keys(
            local_row, self.rows.concept_of[entries], len(subset), self.random_keys[subset]
        )

    def key(self, row: int) -> float:
        """Current key of one row (the formula of `all_keys`, in Python: equal to the last bit)."""
        concepts = self.concepts(row)
        counts, caps = self.count_list, self.cap_list
        if any(counts[c] >= caps[c] for c in concepts):
            saturation = sum((counts[c] + 1.0) / caps[c] for c in concepts)
            return 4.0 + saturation / (1.0 + saturation)
        targets, weight = self.target_list, self.weight_list
        gain = sum(max(targets[c] - counts[c], 0.0) * weight[c] for c in concepts)
        return 1.0 / (1.0 + gain) if gain > 1e-12 else self.random_key_list[row]

    def add(self, concepts: list[int]) -> None:
        """Count a picked row's (distinct) concepts."""
        counts, count_list = self.counts, self.count_list
        for concept in concepts:
            counts[concept] += 1.0
            count_list[concept] += 1.0
        self._terms = None

    def _keys(
        self, row_of: np.ndarray, concept_of: np.ndarray, num_rows: int, random_keys: np.ndarray
    ) -> np.ndarray:
        def row_sums(per_concept: np.ndarray) -> np.ndarray:
            return np.bincount(row_of, weights=per_concept[concept_of], minlength=num_rows)

        deficit, saturation_terms, full = self._per_concept_terms()
        gains = row_sums(deficit)
        keys = np.where(gains > 1e-12, 1.0 / (1.0 + gains), random_keys)
        if saturation_terms is None or full is None:  # no concept at its cap
            return keys
        saturation = row_sums(saturation_terms)
        over_cap = row_sums(full) > 0
        return np.where(over_cap, 4.0 + saturation / (1.0 + saturation), keys)

    def _per_concept_terms(self) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Deficit, and (once a concept is at its cap) saturation and fullness, per concept."""
        if self._terms is None:
            counts = self.counts
            deficit = np.maximum(self.targets - counts, 0.0) * self.weight
            full = counts >= self.caps
            if full.any():
                self._terms = deficit, (counts + 1.0) / self.caps, full.astype(np.float64)
            else:
                self._terms = deficit, None, None
        return self._terms


def _diversity_greedy(
    rows: ConceptRows,
    targets: np.ndarray,
    caps: np.ndarray,
    batch_size: int,
    rng: np.random.Generator,
    num_rounds: int = 8,
) -> tuple[np.ndarray, int]:
    """CABS-DM greedy with lazy, block-wise re-evaluation; returns picks and rows over cap.

    Each round recomputes every row's key in one vectorised pass, takes the
    best block, and accepts its rows in order while their fresh key is no
    worse than the best key outside the block (the lazy-greedy test). A key
    changes only when a row sharing one of its concepts is accepted, so a
    row's key is recomputed only then: alone (in Python) when such rows are
    rare, for the rest of the block at once (vectorised) when they come in a
    run, as with few concepts. Both give the same keys to the last bit.
    """
    state = _ConceptCounts(rows, targets, caps, rng)
    chosen = np.zeros(rows.num_rows, dtype=bool)
    picked: list[int] = []
    over_cap = 0
    block = max(1, -(-batch_size // num_rounds))
    while len(picked) < batch_size:
        fresh_keys = state.all_keys()
        keys = np.where(chosen, np.inf, fresh_keys)
        size = min(block + 1, rows.num_rows)
        candidates = np.argpartition(keys, size - 1)[:size]
        candidates = candidates[np.argsort(keys[candidates], kind="stable")]
        threshold = keys[candidates[-1]] if size > block else np.inf
        block_rows = candidates[:block]
        fresh = fresh_keys[block_rows].tolist()
        touched: set[int] = set()  # concepts counted since `fresh` was computed
        stale_run = 0  # consecutive rows whose key had changed
        for position, row in enumerate(block_rows.tolist()):
            if len(picked) == batch_size:
                break
            concepts = state.concepts(row)
            if touched.isdisjoint(concepts):
                stale_run, key = 0, fresh[position]
            elif stale_run == 0:  # one changed key: recompute it alone
                stale_run, key = 1, state.key(row)
            else:  # changed keys in a row: recompute the rest of the block at once
                fresh[position:] = state.keys_of(block_rows[position:]).tolist()
                touched.clear()
                stale_run, key = 0, fresh[position]
            if key > threshold and position > 0:  # the block's best always goes in
                continue
            picked.append(row)
            chosen[row] = True
            over_cap += key >= 4.0
            state.add(concepts)
            touched.update(concepts)
    return np.asarray(picked, dtype=np.int64), int(over_cap)
