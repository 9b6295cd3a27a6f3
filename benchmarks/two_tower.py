"""The two-tower task of `selection_quality.py`'s JEST rows, also trained through the
service by `train_pair_tasks.py`: paired features of a shared latent (a share of the
training pairs mismatched), linear towers with a SigLIP head, and the training loop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

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
