"""The concept rows of `selection_quality.py`: CABS's diversity and frequency variants
against uniform batches, on long-tailed (Zipf) concept lists."""

from __future__ import annotations

from typing import Any

import numpy as np
from quality_rows import Row

from batchcraft.selectors import Pool, get_selector
from batchcraft.selectors.concept_stats import ConceptRows, concept_metrics


def zipf_concepts(
    rng: np.random.Generator, num_rows: int, num_concepts: int = 1000
) -> list[list[str]]:
    """Zipf(1.1) concept frequencies; concepts per row geometric with mean 3 (long-tailed captions)."""
    shares = 1.0 / np.arange(1, num_concepts + 1) ** 1.1
    shares /= shares.sum()
    sizes = rng.geometric(1 / 3, num_rows)
    draws = rng.choice(num_concepts, int(sizes.sum()), p=shares)
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    names = [f"concept{c}" for c in range(num_concepts)]
    return [[names[c] for c in draws[bounds[i] : bounds[i + 1]]] for i in range(num_rows)]


def concept_rows(rng: np.random.Generator, trials: int) -> list[Row]:
    pool_size, batch_size = 5120, 1024
    results: dict[str, list[dict[str, Any]]] = {"diversity": [], "frequency": [], "uniform": []}
    for _ in range(trials):
        pool = Pool(concepts=zipf_concepts(rng, pool_size))
        rows = ConceptRows.from_pool_column(pool.concepts)
        targets = (rows.concept_counts > 0).astype(float)
        for variant in ("diversity", "frequency"):
            results[variant].append(
                get_selector("concept", variant=variant).select(pool, batch_size, rng).info
            )
        uniform = rng.choice(pool_size, batch_size, replace=False)
        results["uniform"].append(concept_metrics(rows, uniform, targets))

    def mean(name: str, key: str) -> float:
        return float(np.mean([info[key] for info in results[name]]))

    entropy, uniform_entropy = (
        mean("diversity", "concept_entropy"),
        mean("uniform", "concept_entropy"),
    )
    kl, uniform_kl = mean("diversity", "kl_to_target"), mean("uniform", "kl_to_target")
    per_sample = mean("frequency", "concepts_per_sample")
    uniform_per_sample = mean("uniform", "concepts_per_sample")
    return [
        Row("concept DM", "batch concept entropy, nats", entropy, "uniform", uniform_entropy,
            "≥ 1.2× uniform", entropy >= 1.2 * uniform_entropy),
        Row("concept DM", "KL(batch ‖ uniform target), nats", kl, "uniform", uniform_kl,
            "far below uniform (≤ 0.5×)", kl <= 0.5 * uniform_kl),
        Row("concept DM", "long-tail share of concept occurrences", mean("diversity", "long_tail_share"),
            "uniform", mean("uniform", "long_tail_share"), "above uniform",
            mean("diversity", "long_tail_share") > mean("uniform", "long_tail_share")),
        Row("concept FM", "concepts per sample", per_sample, "uniform", uniform_per_sample,
            "≥ 2× uniform", per_sample >= 2 * uniform_per_sample),
    ]  # fmt: skip
