"""The hard-negative task of `train_through_service.py` (NGAME): retrieval with in-batch
negatives, queries to many labels grouped in topics.

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
from train_loop import UNIFORM, Curve, Variant, job_id, tensor, timed_training, unit, write_curated

from batchcraft.service import BatchClient


@dataclass
class RetrievalHeldOut:
    """Held-out queries, the label documents they must retrieve, and each query's label."""

    queries: torch.Tensor
    documents: torch.Tensor
    labels: torch.Tensor


class RetrievalTower(torch.nn.Module):
    """Linear query and document towers, unit-norm outputs."""

    def __init__(self, feature_dim: int, embedding_dim: int = 32) -> None:
        super().__init__()
        self.query = torch.nn.Linear(feature_dim, embedding_dim)
        self.document = torch.nn.Linear(feature_dim, embedding_dim)

    def forward(self, queries: torch.Tensor, documents: torch.Tensor) -> tuple[Any, Any]:
        return (
            functional.normalize(self.query(queries), dim=1),
            functional.normalize(self.document(documents), dim=1),
        )


class HardNegativeTask:
    """NGAME's setting: queries to many labels grouped in topics, in-batch negatives.

    4,000 labels (documents), 40 per topic on average in 100 topics of a 32-d
    latent (as selection_quality.py's extreme-classification pool, with labels
    closer within a topic: 0.25 apart against query noise 0.5, so ranking a
    label above its topic-mates is the hard part); 5 noisy queries per label
    make the 20,000 training rows (query, its label's document). Raw 64-d
    features of both sides travel as extra columns; the curated ``embedding`` /
    ``pair_embedding`` are a generic encoder's (a fixed random projection of
    the features), which NGAME clusters. The model is two linear towers trained
    with in-batch softmax (temperature 0.05, Adam 1e-3, batch 256), excluding the
    batch's accidental positives (the server's ``false_negative_mask``; for
    uniform batches the same mask from the labels). ``hard_negative`` runs the
    paper's curriculum (clusters of 1, 2, 4, 8, then 16 anchors, doubling every
    epoch of 79 steps) and the trainer reports both towers' embeddings, so each
    epoch is clustered with the current encoder. Metric: recall@10 of 2,000
    held-out queries among all 4,000 documents.
    """

    name = "hard_negative"
    metric = "held-out recall@10"
    variants = (
        UNIFORM,
        Variant("hard_negative", "hard_negative", {"cluster_size": 16}),
    )
    num_labels, queries_per_label, num_topics, latent_dim, feature_dim = 4000, 5, 100, 32, 64
    batch_size, eval_every, temperature = 256, 10, 0.05
    label_spread, query_noise = 0.25, 0.5

    def prepare(self, root: Path, seed: int) -> RetrievalHeldOut:
        rng = np.random.default_rng(4000 + seed)
        topics = rng.normal(size=(self.num_topics, self.latent_dim))
        centres = topics[rng.integers(0, self.num_topics, self.num_labels)]
        centres += self.label_spread * rng.normal(size=centres.shape)
        query_map, document_map = (
            rng.normal(size=(self.latent_dim, self.feature_dim)) / np.sqrt(self.latent_dim)
            for _ in range(2)
        )
        documents = (centres @ document_map).astype(np.float32)

        def queries(labels: np.ndarray) -> np.ndarray:
            noise = self.query_noise * rng.normal(size=(len(labels), self.latent_dim))
            latent = centres[labels] + noise
            noise = 0.3 * rng.normal(size=(len(labels), self.feature_dim))
            return (latent @ query_map + noise).astype(np.float32)

        labels = np.repeat(np.arange(self.num_labels), self.queries_per_label)
        query_features = queries(labels)
        encoder = rng.normal(size=(self.feature_dim, 32))  # the "generic" curation encoder
        columns = {
            "id": pa.array([f"h{seed}-{i:06d}" for i in range(len(labels))]),
            "embedding": unit(query_features @ encoder),
            "pair_embedding": unit(documents[labels] @ encoder),
            "query_features": query_features,
            "document_features": documents[labels],
            "label": pa.array(labels, pa.int64()),
        }
        write_curated(root, columns, "hard negatives: 4,000 labels in 100 topics")
        eval_labels = rng.integers(0, self.num_labels, 2000)
        return RetrievalHeldOut(
            torch.from_numpy(queries(eval_labels)),
            torch.from_numpy(documents),
            torch.from_numpy(eval_labels),
        )

    def train(
        self,
        address: str,
        dataset: str,
        variant: Variant,
        held_out: RetrievalHeldOut,
        steps: int,
        seed: int,
    ) -> Curve:
        torch.manual_seed(seed)
        model = RetrievalTower(self.feature_dim)
        optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
        client = BatchClient(
            address, dataset, variant.selector, self.batch_size, seed=seed,
            columns=["id", "query_features", "document_features", "label"],
            selector_params=variant.params, job=job_id(self.name, variant, seed), num_epochs=0,
        )  # fmt: skip
        reports = variant.selector != "uniform"

        def train_step(batch: dict[str, Any], curve: Curve) -> None:
            query, document = model(
                tensor(batch["query_features"]), tensor(batch["document_features"])
            )
            logits = query @ document.T / self.temperature
            logits = logits.masked_fill(accidental_positives(client, batch), float("-inf"))
            loss = functional.cross_entropy(logits, torch.arange(len(logits)))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            if reports:  # NGAME re-clusters the anchors with the current encoder
                client.report(
                    batch["id"],
                    learner_embeddings=query.detach(),
                    learner_pair_embeddings=document.detach(),
                )

        with client:
            return timed_training(
                client, steps, train_step, lambda: recall_at_10(model, held_out),
                self.eval_every, lambda: client.last_meta,
            )  # fmt: skip


def accidental_positives(client: BatchClient, batch: dict[str, Any]) -> torch.Tensor:
    """The batch's (b, b) mask of other rows whose positive is also this anchor's."""
    meta = client.last_meta
    mask = None if meta is None else meta.arrays.get("false_negative_mask")
    if mask is None:  # uniform batches carry no mask: the same rule from the labels
        labels = np.asarray(batch["label"])
        mask = (labels[:, None] == labels[None, :]) & ~np.eye(len(labels), dtype=bool)
    return torch.from_numpy(np.array(mask, dtype=bool))


@torch.no_grad()
def recall_at_10(model: RetrievalTower, held_out: RetrievalHeldOut) -> float:
    query, document = model(held_out.queries, held_out.documents)
    top = (query @ document.T).topk(10, dim=1).indices
    return float((top == held_out.labels[:, None]).any(1).float().mean())
