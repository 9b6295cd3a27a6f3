"""The concept-balance task of `train_through_service.py` (CABS): a multi-label probe on
long-tailed concepts, measured on the rarest ones.

The task writes its synthetic data as a curated dataset, then trains a torch
model on the batches a running server sends, as a user's training loop would.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from torch.nn import functional
from torch.utils.data import DataLoader
from train_loop import UNIFORM, Curve, Variant, job_id, timed_training, unit, write_curated

from batchcraft.service.client.torch import BatchDataset


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
