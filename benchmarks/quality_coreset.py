"""The coreset rows of `selection_quality.py`: CREST's weighted batch gradient against
uniform's, facility location against apricot-select, and CoLM's small sources.

The data is a 10-class Gaussian-mixture logistic regression and its last-layer gradients.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from quality_rows import Row, median_ms

from batchcraft.selectors import Pool, get_selector
from batchcraft.selectors.facility_location import distance_similarity, facility_location


def logistic_regression_pool(
    rng: np.random.Generator, num_rows: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rows of a 10-class Gaussian-mixture task and their last-layer gradients.

    The model is a partially trained linear softmax classifier; a row's
    gradient is ``(softmax − one_hot) ⊗ features`` (what CREST sketches).
    """
    num_classes, dim = 10, 24
    centres = rng.normal(size=(num_classes, dim)) * 1.5
    labels = rng.integers(0, num_classes, num_rows)
    features = centres[labels] + rng.normal(size=(num_rows, dim))
    weights = centres * 0.3 + rng.normal(scale=0.3, size=centres.shape)  # partially trained
    logits = features @ weights.T
    probabilities = np.exp(logits - logits.max(1, keepdims=True))
    probabilities /= probabilities.sum(1, keepdims=True)
    residual = probabilities - np.eye(num_classes)[labels]
    gradients = (residual[:, :, None] * features[:, None, :]).reshape(num_rows, -1)
    return features, gradients.astype(np.float32)


def coreset_rows(rng: np.random.Generator, trials: int) -> tuple[list[Row], dict[str, float]]:
    pool_size, batch_size = 1280, 128
    selector = get_selector("coreset")
    coreset_errors, random_errors = [], []
    for _ in range(trials):
        _, gradients = logistic_regression_pool(rng, pool_size)
        target = gradients.mean(0)
        selection = selector.select(Pool(gradient_sketches=gradients), batch_size, rng)
        assert selection.weights is not None
        estimate = (selection.weights[:, None] * gradients[selection.indices]).sum(0) / pool_size
        coreset_errors.append(np.linalg.norm(estimate - target) / np.linalg.norm(target))
        random_batch = gradients[rng.choice(pool_size, batch_size, replace=False)].mean(0)
        random_errors.append(np.linalg.norm(random_batch - target) / np.linalg.norm(target))
    coreset_error, random_error = float(np.mean(coreset_errors)), float(np.mean(random_errors))

    _, gradients = logistic_regression_pool(rng, pool_size)
    similarity = distance_similarity(gradients)
    exact = facility_location(similarity, batch_size)
    stochastic = facility_location(similarity, batch_size, epsilon=0.01, rng=rng)
    ours_ms = median_ms(
        lambda: facility_location(
            distance_similarity(gradients), batch_size, epsilon=0.01, rng=rng
        ),
        5,
    )
    apricot_objective, apricot_ms = apricot_facility_location(similarity, batch_size)

    sources = np.array(["web"] * 1200 + ["code"] * 40 + ["math"] * 25 + ["legal"] * 15)
    small = ("code", "math", "legal")
    kept_coreset, kept_random = 0, 0
    colm = get_selector("coreset", small_source_share=0.05)
    for _ in range(trials):
        order = rng.permutation(pool_size)
        features, _ = logistic_regression_pool(rng, pool_size)
        pool = Pool(embeddings=features, sources=sources[order])
        picked = set(pool.sources[colm.select(pool, batch_size, rng).indices])
        kept_coreset += all(name in picked for name in small)
        random_picked = set(pool.sources[rng.choice(pool_size, batch_size, replace=False)])
        kept_random += all(name in random_picked for name in small)
    rows = [
        Row("coreset", "relative error of weighted batch gradient vs pool gradient", coreset_error,
            "uniform", random_error, "≤ 0.65× uniform", coreset_error <= 0.65 * random_error),
        Row("coreset", "facility-location objective, exact lazy greedy (1280→128)", exact.objective,
            "apricot-select (lazy)", apricot_objective, "≥ 0.99× apricot",
            exact.objective >= 0.99 * apricot_objective),
        Row("coreset", "facility-location objective, default stochastic-lazy (ε = 0.01)",
            stochastic.objective, "apricot-select (lazy)", apricot_objective, "≥ 0.99× apricot",
            stochastic.objective >= 0.99 * apricot_objective),
        Row("coreset", "facility-location time (default, incl. similarity), ms", ours_ms,
            "apricot-select (lazy)", apricot_ms, "faster than apricot", ours_ms < apricot_ms),
        Row("coreset (CoLM)", "batches holding every small source, %", 100 * kept_coreset / trials,
            "uniform", 100 * kept_random / trials, "100%", kept_coreset == trials),
    ]  # fmt: skip
    return rows, {"apricot_ms": apricot_ms}


def apricot_facility_location(similarity: np.ndarray, count: int) -> tuple[float, float]:
    from apricot import FacilityLocationSelection

    def run() -> Any:
        return FacilityLocationSelection(count, metric="precomputed", optimizer="lazy").fit(
            similarity
        )

    selection = run()  # also compiles numba
    objective = float(similarity[:, selection.ranking].max(axis=1).sum())
    return objective, median_ms(run, 3)
