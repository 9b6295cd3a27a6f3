"""Classification tasks of `train_through_service.py`: label noise (JEST/RHO-LOSS),
coreset (CREST) and concept balance (CABS).

Each task writes its synthetic data as a curated dataset, then trains a torch
model on the batches a running server sends, as a user's training loop would.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from torch.nn import functional
from torch.utils.data import DataLoader
from train_loop import UNIFORM, Curve, Variant, timed_training, unit, write_curated

from batchcraft.service import BatchClient
from batchcraft.service.client.torch import BatchDataset


def job_id(task: str, variant: Variant, seed: int) -> str:
    """A fresh job per run: a reused id would resume the previous run's cursor."""
    return f"{task}-{variant.label}-{seed}-{time.monotonic_ns()}".replace(" ", "_")


def tensor(array: Any) -> torch.Tensor:
    """A batch column as a tensor (the received arrays are read-only views: copied)."""
    return torch.tensor(np.asarray(array))


# ----------------------------------------------------------------------------- label noise


@dataclass
class HeldOut:
    """A task's clean held-out rows."""

    features: torch.Tensor
    labels: torch.Tensor


def mlp(inputs: int, outputs: int, hidden: int = 128, layers: int = 1) -> torch.nn.Module:
    """``layers`` hidden ReLU layers of ``hidden`` units."""
    widths = [inputs] + [hidden] * layers
    modules: list[torch.nn.Module] = []
    for width, following in itertools.pairwise(widths):
        modules += [torch.nn.Linear(width, following), torch.nn.ReLU()]
    return torch.nn.Sequential(*modules, torch.nn.Linear(widths[-1], outputs))


@torch.no_grad()
def accuracy(model: torch.nn.Module, held_out: HeldOut) -> float:
    return float((model(held_out.features).argmax(1) == held_out.labels).float().mean())


class LabelNoiseTask:
    """A 10-class classifier on embeddings with 30% flipped labels (RHO-LOSS / JEST setting).

    50 Gaussian clusters on the unit sphere (32-d), 5 per class, so the classes
    are not linearly separable: the learner is an MLP (32-128-10) trained with
    SGD at batch 64 and learning rate 1.0, uniform's fastest of 0.1, 0.3 and 1.0.
    (Measured in process, without the service: training on the clean rows only
    reaches 0.94 accuracy no sooner than uniform, with SGD or Adam, while the
    top 20% of each 5x pool by fresh learnability gets there in under half the
    steps: what pays here is skipping rows already learnt, not only noisy ones.)
    30% of the 20,000 training labels are flipped to another class. The
    reference model (same MLP, Adam, full batch) is trained on 1,000 clean rows;
    its loss on each training row's (possibly flipped) label is ``ref_loss``.
    ``cluster`` is the generating cluster, so a candidate the trainer has not
    reported gets its cluster's mean loss. ``jest`` and ``jest_independent`` get
    the per-row losses of every batch the trainer trains on (async);
    ``jest (sync)`` scores every super-batch on the current model first, ``jest
    (ahead, T=0.3)`` two steps before its selection (no round trip on the step), and
    samples at temperature 0.3 (1.0 and 0.1 measured: 0.78x and 0.59x steps).
    ``label_noise_2k`` is the same task on 2,000 training rows and a learner whose step
    costs what a real model's does next to the data loader (two hidden layers of 1,024,
    about 12 ms a step here, SGD at 0.3): uniform reaches the target after several
    passes, so an async trainer's reports give most candidates a loss of their own (from
    their last visit); with 20,000 rows the target comes within one pass and every async
    selection rests on cluster estimates. Metric:
    accuracy on 2,000 clean held-out rows. Diagnostics: the share of flipped labels
    among the rows trained on, and their learnability (loss - ``ref_loss``) then.
    """

    metric = "held-out clean accuracy"
    num_classes, dim, num_clusters, noise_share = 10, 32, 50, 0.3
    batch_size, eval_every = 64, 10

    def __init__(self, rows: int = 20000) -> None:
        self.rows = rows
        self.name = "label_noise" if rows == 20000 else f"label_noise_{rows // 1000}k"
        # the learner: 32-128-10 (about 1 ms a step), or for the small corpus one whose
        # step costs what a real model's would relative to the data loader (32-1024-1024-10,
        # about 12 ms a step on one core; SGD at 0.3, uniform's best final of 0.1/0.3/1.0)
        self.hidden, self.layers = (128, 1) if rows == 20000 else (1024, 2)
        self.learning_rate = 1.0 if rows == 20000 else 0.3
        self.variants: tuple[Variant, ...] = (
            UNIFORM,
            Variant("jest", "jest"),
            Variant("jest_independent", "jest_independent"),
            Variant("jest (sync)", "jest", scoring="sync"),
            Variant("jest (ahead, T=0.3)", "jest", {"temperature": 0.3}, scoring="ahead"),
        )
        if rows != 20000:  # many passes: every row has a loss of its own from its last visit
            self.variants = (UNIFORM, Variant("jest", "jest"),
                             Variant("jest (T=0.3)", "jest", {"temperature": 0.3}),
                             Variant("jest_independent", "jest_independent"))  # fmt: skip

    def prepare(self, root: Path, seed: int) -> HeldOut:
        rng = np.random.default_rng(1000 + seed)
        centres = unit(rng.normal(size=(self.num_clusters, self.dim)))

        def rows(count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            cluster = rng.integers(0, self.num_clusters, count)
            features = unit(centres[cluster] + 0.12 * rng.normal(size=(count, self.dim)))
            return features, cluster % self.num_classes, cluster

        features, labels, cluster = rows(self.rows)
        flipped = rng.random(len(labels)) < self.noise_share
        shift = rng.integers(1, self.num_classes, len(labels))
        noisy_labels = np.where(flipped, (labels + shift) % self.num_classes, labels)
        clean_features, clean_labels, _ = rows(1000)
        reference = self._reference(clean_features, clean_labels, seed)
        with torch.no_grad():
            ref_loss = functional.cross_entropy(
                reference(torch.from_numpy(features)),
                torch.from_numpy(noisy_labels),
                reduction="none",
            )
        columns = {
            "id": pa.array([f"n{seed}-{i:06d}" for i in range(len(labels))]),
            "embedding": features,
            "label": pa.array(noisy_labels, pa.int64()),
            "ref_loss": pa.array(ref_loss.numpy(), pa.float32()),
            "cluster": pa.array(cluster, pa.int32()),
        }
        write_curated(root, columns, "label noise: 30% flipped labels, ref_loss from clean data")
        eval_features, eval_labels, _ = rows(2000)
        return HeldOut(torch.from_numpy(eval_features), torch.from_numpy(eval_labels))

    def _reference(self, features: np.ndarray, labels: np.ndarray, seed: int) -> torch.nn.Module:
        """The reference model: the same MLP, trained full-batch on the clean split."""
        torch.manual_seed(seed)
        model = mlp(self.dim, self.num_classes)
        optimiser = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-4)
        inputs, targets = torch.from_numpy(features), torch.from_numpy(labels)
        for _ in range(300):
            optimiser.zero_grad()
            functional.cross_entropy(model(inputs), targets).backward()
            optimiser.step()
        return model

    def train(
        self, address: str, dataset: str, variant: Variant, held_out: HeldOut, steps: int, seed: int
    ) -> Curve:
        torch.manual_seed(seed)
        model = mlp(self.dim, self.num_classes, self.hidden, self.layers)
        optimiser = torch.optim.SGD(model.parameters(), lr=self.learning_rate)
        client = BatchClient(
            address, dataset, variant.selector, self.batch_size, seed=seed,
            columns=["id", "embedding", "label", "cluster", "ref_loss"],
            selector_params=variant.params,
            job=job_id(self.name, variant, seed), num_epochs=0, scoring=variant.scoring,
            scorer=self._scorer(model) if variant.scoring != "async" else None,
        )  # fmt: skip
        reports = variant.selector != "uniform" and variant.scoring == "async"

        def train_step(batch: dict[str, Any], curve: Curve) -> None:
            losses = functional.cross_entropy(
                model(tensor(batch["embedding"])), tensor(batch["label"]), reduction="none"
            )
            self._diagnose(batch, losses, curve)
            optimiser.zero_grad()
            losses.mean().backward()
            optimiser.step()
            if reports:
                client.report(batch["id"], losses=losses.detach())

        with client:
            return timed_training(
                client, steps, train_step, lambda: accuracy(model, held_out), self.eval_every,
                lambda: client.last_meta,
            )  # fmt: skip

    def _diagnose(self, batch: dict[str, Any], losses: torch.Tensor, curve: Curve) -> None:
        """What the trainer was served: the share of flipped labels (the generating cluster
        tells the true class) and the rows' learnability at training time."""
        true_labels = np.asarray(batch["cluster"]) % self.num_classes
        curve.note("flipped_share", float((np.asarray(batch["label"]) != true_labels).mean()))
        learnability = losses.detach().numpy() - np.asarray(batch["ref_loss"])
        curve.note("learnability", float(learnability.mean()))

    @staticmethod
    def _scorer(model: torch.nn.Module) -> Any:
        """A sync scorer: the current model's loss on each candidate of a round."""

        @torch.no_grad()
        def score(candidates: dict[str, Any]) -> np.ndarray:
            logits = model(tensor(candidates["embedding"]))
            return functional.cross_entropy(logits, tensor(candidates["label"]), reduction="none")

        return score


# ----------------------------------------------------------------------------- coreset


class CoresetTask:
    """CREST on a 10-class Gaussian-mixture logistic regression (selection_quality's data).

    24-d features, unit noise around class centres drawn with scale 0.7 (20,000
    rows; selection_quality.py's scale 1.5 makes the classes separable in ten
    steps). The model is a linear softmax classifier trained with SGD at batch 8
    and learning rate 1.0: CREST's setting, small mini-batches whose gradient
    noise slows training (uniform plateaus near 0.85-0.89 accuracy, a 10x larger
    batch near 0.90). CREST scores each random pool (10x the batch) on the current
    model, so the coreset runs with synchronous scoring: the server sends the 80
    candidates, the trainer answers their last-layer gradients
    ``(softmax - one_hot) (x) features`` (CREST's proxy; for a linear model the
    exact gradient), and trains on the medoids with the weights the server sends
    (``batch["weight"]``). Uniform and coreset both go through `BatchDataset` and a
    DataLoader. Metric: held-out accuracy, every 5 steps.
    """

    name = "coreset"
    metric = "held-out accuracy"
    variants = (UNIFORM, Variant("coreset", "coreset", scoring="sync"))
    num_classes, dim = 10, 24
    batch_size, eval_every, learning_rate, spread = 8, 5, 1.0, 0.7

    def prepare(self, root: Path, seed: int) -> HeldOut:
        rng = np.random.default_rng(2000 + seed)
        centres = rng.normal(size=(self.num_classes, self.dim)) * self.spread

        def rows(count: int) -> tuple[np.ndarray, np.ndarray]:
            labels = rng.integers(0, self.num_classes, count)
            features = centres[labels] + rng.normal(size=(count, self.dim))
            return features.astype(np.float32), labels

        features, labels = rows(20000)
        columns = {
            "id": pa.array([f"c{seed}-{i:06d}" for i in range(len(labels))]),
            "embedding": unit(features),
            "features": features,
            "label": pa.array(labels, pa.int64()),
        }
        write_curated(root, columns, "coreset: 10-class Gaussian mixture")
        eval_features, eval_labels = rows(2000)
        return HeldOut(torch.from_numpy(eval_features), torch.from_numpy(eval_labels))

    def train(
        self, address: str, dataset: str, variant: Variant, held_out: HeldOut, steps: int, seed: int
    ) -> Curve:
        torch.manual_seed(seed)
        model = torch.nn.Linear(self.dim, self.num_classes)
        optimiser = torch.optim.SGD(model.parameters(), lr=self.learning_rate)
        sync = variant.scoring == "sync"
        batches = BatchDataset(
            address, dataset, selector=variant.selector, batch_size=self.batch_size, seed=seed,
            columns=["id", "features", "label"], selector_params=variant.params,
            job=job_id(self.name, variant, seed), num_epochs=0,
            scoring=variant.scoring, scorer=self._scorer(model) if sync else None,
        )  # fmt: skip

        def train_step(batch: dict[str, Any], curve: Curve) -> None:
            losses = functional.cross_entropy(
                model(batch["features"]), batch["label"], reduction="none"
            )
            weights = batch.get("weight")
            loss = losses.mean() if weights is None else (weights * losses).sum() / weights.sum()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()

        loader = DataLoader(batches, batch_size=None)
        return timed_training(
            loader, steps, train_step, lambda: accuracy(model, held_out), self.eval_every
        )

    def _scorer(self, model: torch.nn.Linear) -> Any:
        """CREST's per-candidate gradient proxies of a sync round, on the current model."""

        @torch.no_grad()
        def score(candidates: dict[str, Any]) -> dict[str, np.ndarray]:
            features = tensor(candidates["features"])
            probabilities = model(features).softmax(1)
            residual = probabilities - functional.one_hot(
                tensor(candidates["label"]), self.num_classes
            )
            sketches = residual[:, :, None] * features[:, None, :]
            return {"gradient_sketches": sketches.reshape(len(features), -1).numpy()}

        return score


# ----------------------------------------------------------------------------- concept


@dataclass
class ConceptHeldOut:
    """Single-concept held-out rows of the long-tail concepts, and the vocabulary."""

    features: torch.Tensor
    concepts: torch.Tensor
    vocabulary: dict[str, int]


class ConceptTask:
    """CABS on long-tailed multi-concept data: does a concept-balanced batch learn the tail?

    100 concepts with Zipf(1.1) frequencies, a geometric number per row (mean 3),
    as in selection_quality.py. A row's 64-d embedding is the normalised sum of
    its concepts' prototypes plus noise. The model is a multi-label linear probe
    (BCE over the 100 concepts, Adam 1e-2, batch 128), CLIP-like in that it
    learns every concept a row mentions. Metric: top-1 accuracy on held-out rows
    that each show one concept of the long tail (the 50 rarest concepts),
    classified among all 100 (CABS reports long-tail classification). Trained
    through `BatchDataset` and a DataLoader; ``concept`` is CABS-DM
    (diversity) with the paper's 80% filter.
    """

    name = "concept"
    metric = "long-tail top-1 accuracy"
    variants = (UNIFORM, Variant("concept", "concept"))
    num_concepts, dim, noise = 100, 64, 0.1
    batch_size, eval_every = 128, 10

    def prepare(self, root: Path, seed: int) -> ConceptHeldOut:
        rng = np.random.default_rng(3000 + seed)
        prototypes = unit(rng.normal(size=(self.num_concepts, self.dim)))
        shares = 1.0 / np.arange(1, self.num_concepts + 1) ** 1.1
        shares /= shares.sum()
        sizes = rng.geometric(1 / 3, 20000)
        draws = rng.choice(self.num_concepts, int(sizes.sum()), p=shares)
        bounds = np.concatenate([[0], np.cumsum(sizes)])
        row_concepts = [np.unique(draws[bounds[i] : bounds[i + 1]]) for i in range(len(sizes))]
        sums = np.stack([prototypes[c].sum(0) for c in row_concepts])
        features = unit(sums + self.noise * rng.normal(size=sums.shape))
        names = [f"concept{c:03d}" for c in range(self.num_concepts)]
        columns = {
            "id": pa.array([f"k{seed}-{i:06d}" for i in range(len(sizes))]),
            "embedding": features,
            "concepts": pa.array([[names[c] for c in row] for row in row_concepts]),
        }
        write_curated(root, columns, "concept: Zipf(1.1) concepts, geometric count per row")
        tail = rng.integers(self.num_concepts // 2, self.num_concepts, 2000)
        held_out = unit(prototypes[tail] + self.noise * rng.normal(size=(len(tail), self.dim)))
        vocabulary = {name: index for index, name in enumerate(names)}
        return ConceptHeldOut(torch.from_numpy(held_out), torch.from_numpy(tail), vocabulary)

    def train(
        self,
        address: str,
        dataset: str,
        variant: Variant,
        held_out: ConceptHeldOut,
        steps: int,
        seed: int,
    ) -> Curve:
        torch.manual_seed(seed)
        model = torch.nn.Linear(self.dim, self.num_concepts)
        optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
        batches = BatchDataset(
            address, dataset, selector=variant.selector, batch_size=self.batch_size, seed=seed,
            columns=["embedding", "concepts"], selector_params=variant.params,
            job=job_id(self.name, variant, seed), num_epochs=0,
        )  # fmt: skip

        def train_step(batch: dict[str, Any], curve: Curve) -> None:
            targets = torch.zeros(len(batch["concepts"]), self.num_concepts)
            for row, concepts in enumerate(batch["concepts"]):
                targets[row, [held_out.vocabulary[c] for c in concepts]] = 1.0
            loss = functional.binary_cross_entropy_with_logits(model(batch["embedding"]), targets)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()

        @torch.no_grad()
        def tail_accuracy() -> float:
            predicted = model(held_out.features).argmax(1)
            return float((predicted == held_out.concepts).float().mean())

        loader = DataLoader(batches, batch_size=None)
        return timed_training(loader, steps, train_step, tail_accuracy, self.eval_every)
