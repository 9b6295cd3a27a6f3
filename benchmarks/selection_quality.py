"""Selection-quality benchmark: does each selector deliver its paper's effect, at CPU scale?

Every row of the table is measured in one run, side by side with its baseline,
on synthetic data made here (described next to each experiment).

    python benchmarks/selection_quality.py --out selection_quality.json [--quick]

Prints a markdown table; writes the same rows plus latencies as JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from machine import machine_lines

from batchcraft.selectors import Pool, get_selector
from batchcraft.selectors.concept_stats import ConceptRows, concept_metrics
from batchcraft.selectors.facility_location import distance_similarity, facility_location
from batchcraft.selectors.negative_mining import false_negative_mask, top_negative_similarity


@dataclass
class Row:
    """One measured claim: the selector's value next to its baseline's."""

    selector: str
    metric: str
    value: float
    baseline: str
    baseline_value: float
    goal: str
    passed: bool


def unit(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def median_ms(function: Callable[[], object], repeats: int) -> float:
    """Median wall-clock milliseconds per call."""
    return timed_ms(function, repeats)[0]


def timed_ms(function: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median wall-clock and process-CPU milliseconds per call (CPU time is robust to other load)."""
    function()  # warm-up
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        function()
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return statistics.median(wall), statistics.median(cpu)


# ----------------------------------------------------------------------------- coreset


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


# ----------------------------------------------------------------------------- concept


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


# ----------------------------------------------------------------------------- hard negative


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


# ----------------------------------------------------------------------------- jest


LATENT_DIM, FEATURE_NOISE, LEARNING_RATE = 32, 1.0, 1e-3
NUM_TOPICS, WITHIN_TOPIC = 50, 0.35


@dataclass
class TwoTowerTask:
    """Paired features sharing a latent; a share of the training pairs is mismatched."""

    train_images: np.ndarray
    train_texts: np.ndarray
    clean_images: np.ndarray
    clean_texts: np.ndarray
    eval_images: np.ndarray
    eval_texts: np.ndarray


def make_two_tower_task(rng: np.random.Generator, noise_share: float) -> TwoTowerTask:
    latent_dim, feature_dim = LATENT_DIM, 64
    image_map = rng.normal(size=(latent_dim, feature_dim))
    text_map = rng.normal(size=(latent_dim, feature_dim))

    topics = rng.normal(size=(NUM_TOPICS, latent_dim))

    def pairs(count: int) -> tuple[np.ndarray, np.ndarray]:
        # items cluster in topics: telling a pair from its topic-mates needs fine detail
        latent = topics[rng.integers(0, NUM_TOPICS, count)] + WITHIN_TOPIC * rng.normal(
            size=(count, latent_dim)
        )
        images = latent @ image_map + FEATURE_NOISE * rng.normal(size=(count, feature_dim))
        texts = latent @ text_map + FEATURE_NOISE * rng.normal(size=(count, feature_dim))
        return images.astype(np.float32), texts.astype(np.float32)

    train_images, train_texts = pairs(20000)
    noisy = rng.random(20000) < noise_share
    train_texts[noisy] = train_texts[rng.permutation(np.flatnonzero(noisy))]  # mismatched pairs
    clean_images, clean_texts = pairs(2000)
    eval_images, eval_texts = pairs(1000)
    return TwoTowerTask(
        train_images, train_texts, clean_images, clean_texts, eval_images, eval_texts
    )


class TwoTower(torch.nn.Module):
    """Linear towers with a SigLIP head (learnable scale and bias, initialised at 10 and −10)."""

    def __init__(self, feature_dim: int, embedding_dim: int = 32) -> None:
        super().__init__()
        self.image = torch.nn.Linear(feature_dim, embedding_dim)
        self.text = torch.nn.Linear(feature_dim, embedding_dim)
        self.log_scale = torch.nn.Parameter(torch.tensor(np.log(10.0), dtype=torch.float32))
        self.bias = torch.nn.Parameter(torch.tensor(-10.0))

    def embed(self, images: np.ndarray, texts: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        image = torch.nn.functional.normalize(self.image(torch.from_numpy(images)), dim=1)
        text = torch.nn.functional.normalize(self.text(torch.from_numpy(texts)), dim=1)
        return image, text

    def loss(self, images: np.ndarray, texts: np.ndarray) -> torch.Tensor:
        image, text = self.embed(images, texts)
        logits = image @ text.T * self.log_scale.exp() + self.bias
        labels = 2 * torch.eye(len(images)) - 1
        return -torch.nn.functional.logsigmoid(labels * logits).sum() / len(images)

    @torch.no_grad()
    def recall_at_1(self, images: np.ndarray, texts: np.ndarray) -> float:
        image, text = self.embed(images, texts)
        return float(((image @ text.T).argmax(1) == torch.arange(len(images))).float().mean())


def train(
    task: TwoTowerTask,
    choose: Callable[[TwoTower, np.ndarray, np.random.Generator], np.ndarray],
    steps: int,
    super_batch: int,
    seed: int,
    images: np.ndarray | None = None,
    texts: np.ndarray | None = None,
) -> tuple[TwoTower, list[float]]:
    """Train a TwoTower; each step draws a random super-batch and trains on ``choose``'s rows."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    images = task.train_images if images is None else images
    texts = task.train_texts if texts is None else texts
    model = TwoTower(images.shape[1])
    optimiser = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    curve = []
    for step in range(steps):
        candidates = rng.choice(len(images), super_batch, replace=False)
        rows = candidates[choose(model, candidates, rng)]
        optimiser.zero_grad()
        model.loss(images[rows], texts[rows]).backward()
        optimiser.step()
        if step % 10 == 9:
            curve.append(model.recall_at_1(task.eval_images, task.eval_texts))
    return model, curve


Chooser = Callable[[TwoTower, np.ndarray, np.random.Generator], np.ndarray]


def uniform_chooser(batch_size: int) -> Chooser:
    return lambda _model, _candidates, _rng: np.arange(batch_size)


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


# ----------------------------------------------------------------------------- latency


def latency_rows(rng: np.random.Generator, repeats: int) -> list[Row]:
    """Median latency per selection; the baseline column is the same call's CPU time."""
    towers = {
        name: unit(rng.normal(size=(2560, 64))).astype(np.float32)
        for name in (
            "embeddings",
            "pair_embeddings",
            "learner_embeddings",
            "learner_pair_embeddings",
        )
    }
    _, gradients = logistic_regression_pool(rng, 1280)
    concept_pool = Pool(concepts=zipf_concepts(rng, 5120))
    cases = [
        ("jest", get_selector("jest"), Pool(**towers), 512, 50.0, "64-d towers"),
        ("coreset", get_selector("coreset"), Pool(embeddings=towers["embeddings"][:1280]), 128, 30.0,
         "64-d embeddings"),
        ("coreset", get_selector("coreset"), Pool(gradient_sketches=gradients), 128, 30.0,
         "240-d gradient sketches"),
        ("concept DM", get_selector("concept"), concept_pool, 1024, 20.0, "concept lists"),
        ("concept FM", get_selector("concept", variant="frequency"), concept_pool, 1024, 20.0,
         "concept lists"),
    ]  # fmt: skip
    rows = []
    for name, selector, pool, batch_size, budget, data in cases:
        wall, cpu = timed_ms(lambda s=selector, p=pool, b=batch_size: s.select(p, b, rng), repeats)
        metric = f"latency {len(pool)}→{batch_size} ({data}), ms wall (median)"
        rows.append(Row(name, metric, wall, "CPU ms of the same calls", cpu, f"≤ {budget:.0f} ms",
                        wall <= budget))  # fmt: skip
    return rows


def markdown(rows: list[Row]) -> str:
    lines = [
        "| selector | metric | value | baseline | baseline value | goal | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.selector} | {row.metric} | {row.value:.4g} | {row.baseline} | "
            f"{row.baseline_value:.4g} | {row.goal} | {'yes' if row.passed else 'NO'} |"
        )
    return "\n".join(lines)


def main() -> None:
    for line in machine_lines():  # figures mean little without the machine they ran on
        print(line, flush=True)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON results")
    parser.add_argument("--quick", action="store_true", help="fewer trials and steps (smoke run)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch intra-op threads (default 1: on shared 2-core machines more threads spin-wait)",
    )
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.torch_threads)
    rng = np.random.default_rng(arguments.seed)
    trials = 3 if arguments.quick else 20
    started = time.perf_counter()
    rows: list[Row] = []
    extra: dict[str, Any] = {}
    for part in (  # latency first: long training runs leave the process slower to measure
        lambda: (latency_rows(rng, 5 if arguments.quick else 30), {}),
        lambda: coreset_rows(rng, trials),
        lambda: (concept_rows(rng, max(2, trials // 5)), {}),
        lambda: hard_negative_rows(rng, 4096 if arguments.quick else 20000),
        lambda: jest_rows(1 if arguments.quick else 3, 150 if arguments.quick else 600),
        lambda: (planted_block_rows(rng, 2 if arguments.quick else 5), {}),
    ):
        part_rows, part_extra = part()
        torch.set_num_threads(arguments.torch_threads)  # importing apricot (numba) resets it
        rows.extend(part_rows)
        extra.update(part_extra)
    table = markdown(rows)
    load = os.getloadavg()
    print(table)
    print(f"\nload average during the run: {load[0]:.2f} (1 min), on {os.cpu_count()} CPUs")
    extra.update(load_average=list(load), torch_threads=arguments.torch_threads, machine=platform.machine(),
                 python=platform.python_version(), seconds=time.perf_counter() - started)  # fmt: skip
    arguments.out.write_text(
        json.dumps({"rows": [asdict(row) for row in rows], **extra}, indent=2, default=float)
    )


if __name__ == "__main__":
    main()
