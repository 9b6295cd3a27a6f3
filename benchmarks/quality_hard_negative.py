"""The hard-negative rows of `selection_quality.py`: NGAME's clustered batches against
random ones on extreme-classification-like pairs, and the accidental positives masked."""

from __future__ import annotations

import time

import numpy as np
from quality_rows import Row

from batchcraft.selectors import Pool, get_selector
from batchcraft.selectors.negative_mining import false_negative_mask, top_negative_similarity


def xc_pool(rng: np.random.Generator, num_rows: int) -> Pool:
    """Extreme-classification-like pairs: many labels (2 anchors each) grouped in 100 topics."""
    dim, num_labels = 32, num_rows // 2
    topics = rng.normal(size=(100, dim))
    centres = topics[rng.integers(0, 100, num_labels)] + 0.8 * rng.normal(size=(num_labels, dim))
    labels = rng.integers(0, num_labels, num_rows)
    anchors = centres[labels] + 0.6 * rng.normal(size=(num_rows, dim))
    positives = centres[labels] + 0.6 * rng.normal(size=(num_rows, dim))
    return Pool(embeddings=anchors, pair_embeddings=positives, labels=labels)


def hard_negative_rows(
    rng: np.random.Generator, num_rows: int
) -> tuple[list[Row], dict[str, float]]:
    pool, batch_size = xc_pool(rng, num_rows), 256
    ngame = get_selector("hard_negative", cluster_size=16, initial_cluster_size=16)
    random_batches = get_selector("hard_negative", cluster_size=1, initial_cluster_size=1)
    start = time.perf_counter()
    plan = ngame.plan_epoch(pool, batch_size, rng, epoch=0)
    plan_seconds = time.perf_counter() - start
    hardness, accidental, masked = [], 0, 0
    for batch in plan:
        info = ngame.select(pool.take(batch), len(batch), rng).info
        hardness.append(info["top_negative_similarity"])
        labels = pool.labels[batch]
        truth = (labels[:, None] == labels[None, :]) & ~np.eye(len(batch), dtype=bool)
        accidental += int(truth.sum())
        masked += int((truth & info["false_negative_mask"]).sum())
    random_hardness = []
    for batch in random_batches.plan_epoch(pool, batch_size, rng):
        part = pool.take(batch)
        mask = false_negative_mask(part.labels, part.embeddings, part.pair_embeddings)
        random_hardness.append(top_negative_similarity(part.embeddings, part.pair_embeddings, mask))
    ours, baseline = float(np.mean(hardness)), float(np.mean(random_hardness))
    rows = [
        Row("hard_negative", "mean top-10 in-batch negative cosine", ours, "random batches", baseline,
            "≥ 1.1× random", ours >= 1.1 * baseline),
        Row("hard_negative", "accidental positives masked, %", 100 * masked / max(accidental, 1),
            "(count per epoch)", float(accidental), "100%", masked == accidental),
    ]  # fmt: skip
    return rows, {"hard_negative_plan_seconds": plan_seconds, "hard_negative_rows": num_rows}
