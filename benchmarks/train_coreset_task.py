"""The coreset task of `train_through_service.py` (CREST): a small-batch linear classifier
trained on the weighted medoids of each pool, scored by the trainer's gradient proxies.

The task writes its synthetic data as a curated dataset, then trains a torch
model on the batches a running server sends, as a user's training loop would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from torch.nn import functional
from torch.utils.data import DataLoader
from train_loop import UNIFORM, Curve, Variant, job_id, tensor, timed_training, unit, write_curated
from train_tasks import HeldOut, accuracy

from batchcraft.service.client.torch import BatchDataset


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
