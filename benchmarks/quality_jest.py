"""The JEST rows of `selection_quality.py`: steps to a held-out recall on the noisy
two-tower task (`two_tower.py`) against uniform and independent selection, and a planted
block only joint selection can find."""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np
import torch
from quality_rows import Row, unit
from two_tower import Chooser, TwoTower, TwoTowerTask, make_two_tower_task, train, uniform_chooser

from batchcraft.selectors import Pool, get_selector


def selector_chooser(
    name: str, params: dict[str, Any], task: TwoTowerTask, reference: TwoTower, batch_size: int
) -> Chooser:
    """Synchronous JEST: score the super-batch on the current learner, then select."""
    with torch.no_grad():
        stored = [t.numpy() for t in reference.embed(task.train_images, task.train_texts)]
    selector = get_selector(
        name,
        reference_logit_scale=float(reference.log_scale.exp().detach()),
        reference_logit_bias=float(reference.bias.detach()),
        **params,
    )

    def choose(model: TwoTower, candidates: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        with torch.no_grad():
            image, text = model.embed(task.train_images[candidates], task.train_texts[candidates])
        pool = Pool(
            embeddings=stored[0][candidates],
            pair_embeddings=stored[1][candidates],
            learner_embeddings=image.numpy(),
            learner_pair_embeddings=text.numpy(),
            learner_logit_scale=float(model.log_scale.exp().detach()),
            learner_logit_bias=float(model.bias.detach()),
        )
        return selector.select(pool, batch_size, rng).indices

    return choose


JEST_METHODS: dict[str, tuple[str, dict[str, Any]]] = {
    "uniform": ("uniform", {}),
    "jest": ("jest", {}),
    "jest_independent (softmax)": ("jest_independent", {"method": "softmax"}),
    "jest (temperature 0.25)": ("jest", {"temperature": 0.25}),
    "jest_independent (top-k)": ("jest_independent", {}),
}


def steps_to(curve: list[float], target: float) -> float:
    """Training steps until the held-out score first reaches ``target`` (evaluated every 10)."""
    hits = [index for index, value in enumerate(curve) if value >= target]
    return float(10 * (hits[0] + 1)) if hits else float("inf")


def jest_rows(seeds: int, steps: int) -> tuple[list[Row], dict[str, Any]]:
    """Noisy two-tower task: 60% mismatched pairs; reference trained on 2000 clean pairs.

    Every method draws the same uniform super-batches (5× the batch, filter
    ratio 0.8) and trains the same model; they differ only in which 64 rows
    of each super-batch they train on.
    """
    batch_size, super_batch = 64, 320
    curves: dict[str, list[list[float]]] = {name: [] for name in JEST_METHODS}
    for seed in range(seeds):
        task = make_two_tower_task(np.random.default_rng(100 + seed), noise_share=0.6)
        reference, _ = train(
            task,
            uniform_chooser(batch_size),
            400,
            batch_size,
            seed,
            task.clean_images,
            task.clean_texts,
        )
        for label, (name, params) in JEST_METHODS.items():
            choose = (
                uniform_chooser(batch_size)
                if name == "uniform"
                else selector_chooser(name, params, task, reference, batch_size)
            )
            curves[label].append(train(task, choose, steps, super_batch, seed)[1])
    finals = {label: [float(np.mean(c[-3:])) for c in runs] for label, runs in curves.items()}
    uniform_target = 0.95 * statistics.median(finals["uniform"])
    independent_target = 0.95 * statistics.median(finals["jest_independent (softmax)"])
    strict_target = 0.95 * statistics.median(finals["jest_independent (top-k)"])

    def median_steps(label: str, target: float) -> float:
        return statistics.median(steps_to(curve, target) for curve in curves[label])

    def compare(label: str, baseline: str, target: float, goal: str, ratio: float) -> Row:
        ours, theirs = median_steps(label, target), median_steps(baseline, target)
        metric = f"steps to held-out recall@1 ≥ {target:.3f} (median of {seeds} seeds)"
        return Row(
            label, metric, ours, baseline, theirs, goal, ours <= ratio * theirs and ours < theirs
        )

    rows = [
        compare("jest", "uniform", uniform_target, "≤ 0.5× uniform", 0.5),
        compare(
            "jest", "jest_independent (softmax)", independent_target, "fewer than independent", 1.0
        ),
        compare(
            "jest (temperature 0.25)",
            "jest_independent (top-k)",
            strict_target,
            "fewer than independent",
            1.0,
        ),
    ]
    return rows, {"jest_final_recall": finals, "jest_curves": curves}


def planted_block_rows(rng: np.random.Generator, trials: int) -> list[Row]:
    """A block of rows learnable only through pairwise terms (diagonals all equal)."""
    pool_size, batch_size = 2560, 512
    joint, independent = [], []
    for _ in range(trials):
        reference = unit(rng.normal(size=(pool_size, 64))).astype(np.float32)
        block = rng.choice(pool_size, batch_size, replace=False)
        learner = reference.copy()
        learner[block] = unit(rng.normal(size=(1, 64))) + 0.05 * rng.normal(size=(batch_size, 64))
        pool = Pool(embeddings=reference, pair_embeddings=reference, learner_embeddings=learner,
                    learner_pair_embeddings=learner, learner_logit_scale=20.0, learner_logit_bias=-10.0)  # fmt: skip
        joint.append(
            np.isin(get_selector("jest").select(pool, batch_size, rng).indices, block).mean()
        )
        picked = get_selector("jest_independent").select(pool, batch_size, rng).indices
        independent.append(np.isin(picked, block).mean())
    chance = batch_size / pool_size
    return [
        Row("jest (planted block)", "share of the block recovered, 16 chunks", float(np.mean(joint)),
            "jest_independent", float(np.mean(independent)), f"≥ 0.7; independent ≈ chance {chance:.2f}",
            np.mean(joint) >= 0.7 and abs(np.mean(independent) - chance) < 0.1),
    ]  # fmt: skip
