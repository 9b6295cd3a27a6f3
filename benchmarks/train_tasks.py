"""The label-noise tasks of `train_through_service.py` (JEST/RHO-LOSS), and the classifier
pieces the coreset task shares: held-out rows, an MLP and its accuracy.

Each task writes its synthetic data as a curated dataset, then trains a torch
model on the batches a running server sends, as a user's training loop would.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from torch.nn import functional
from train_loop import UNIFORM, Curve, Variant, job_id, tensor, timed_training, unit, write_curated

from batchcraft.service import BatchClient


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
