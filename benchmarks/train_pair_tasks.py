"""The noisy-pairs task of `train_through_service.py` (JEST, pairwise): a two-tower SigLIP
learner on 60% mismatched pairs, scored sync or reporting its embeddings async.

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
from train_loop import UNIFORM, Curve, Variant, job_id, timed_training, write_curated
from two_tower import TwoTower, make_two_tower_task, train, uniform_chooser

from batchcraft.service import BatchClient


@dataclass
class PairsHeldOut:
    """Clean held-out pairs and the reference model's SigLIP head."""

    images: np.ndarray
    texts: np.ndarray
    reference_logit_scale: float
    reference_logit_bias: float


class NoisyPairsTask:
    """JEST's setting: image-text-like pairs, 60% mismatched, and a two-tower SigLIP learner.

    The data, model and optimiser are selection_quality.py's jest task: 64-d
    "image" and "text" features of a shared 32-d latent in 50 topics, 60% of the
    20,000 training pairs mismatched; linear towers with a SigLIP head (Adam
    1e-3, batch 64 from a super-batch of 320). The reference model is the same
    two-tower trained on 2,000 clean pairs; its tower outputs are the dataset's
    ``embedding``/``pair_embedding`` and its logit scale and bias are passed as
    ``reference_logit_scale``/``reference_logit_bias``. The raw features travel
    as the extra columns ``image_features``/``text_features``.

    ``jest (sync)`` scores each super-batch on the current learner before the
    selection (the paper's procedure); ``jest (async)`` reports the learner
    embeddings, logit scale and bias of every batch it trains on, and the server
    predicts the unreported candidates' embeddings from the reference towers.
    Metric: held-out recall@1 (image to text) over 1,000 clean pairs.
    """

    name = "noisy_pairs"
    metric = "held-out recall@1"
    variants = (
        UNIFORM,
        Variant("jest (sync)", "jest", scoring="sync"),
        Variant("jest (async)", "jest"),
    )
    batch_size, eval_every = 64, 10

    def prepare(self, root: Path, seed: int) -> PairsHeldOut:
        task = make_two_tower_task(np.random.default_rng(100 + seed), noise_share=0.6)
        reference, _ = train(
            task, uniform_chooser(64), 400, 64, seed, task.clean_images, task.clean_texts
        )
        with torch.no_grad():
            image, text = reference.embed(task.train_images, task.train_texts)
        columns = {
            "id": pa.array([f"p{seed}-{i:06d}" for i in range(len(image))]),
            "embedding": image.numpy(),
            "pair_embedding": text.numpy(),
            "image_features": task.train_images,
            "text_features": task.train_texts,
        }
        write_curated(root, columns, "noisy pairs: 60% mismatched, reference towers")
        return PairsHeldOut(
            task.eval_images,
            task.eval_texts,
            float(reference.log_scale.exp().detach()),
            float(reference.bias.detach()),
        )

    def train(
        self,
        address: str,
        dataset: str,
        variant: Variant,
        held_out: PairsHeldOut,
        steps: int,
        seed: int,
    ) -> Curve:
        torch.manual_seed(seed)
        model = TwoTower(held_out.images.shape[1])
        optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
        params = dict(variant.params)
        if variant.selector == "jest":
            params["reference_logit_scale"] = held_out.reference_logit_scale
            params["reference_logit_bias"] = held_out.reference_logit_bias
        sync = variant.scoring == "sync"
        client = BatchClient(
            address, dataset, variant.selector, self.batch_size, seed=seed,
            columns=["id", "image_features", "text_features"], selector_params=params,
            job=job_id(self.name, variant, seed), num_epochs=0, scoring=variant.scoring,
            scorer=learner_scorer(model) if sync else None,
        )  # fmt: skip
        reports = variant.selector != "uniform" and not sync

        def train_step(batch: dict[str, Any], curve: Curve) -> None:
            image, text = model.embed(
                np.array(batch["image_features"]), np.array(batch["text_features"])
            )
            logits = image @ text.T * model.log_scale.exp() + model.bias
            signs = 2 * torch.eye(len(image)) - 1
            loss = -functional.logsigmoid(signs * logits).sum() / len(image)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            if reports:
                client.report(batch["id"], **learner_feedback(model, image, text))

        def recall() -> float:
            return model.recall_at_1(held_out.images, held_out.texts)

        with client:
            return timed_training(
                client, steps, train_step, recall, self.eval_every, lambda: client.last_meta
            )


def learner_feedback(model: TwoTower, image: torch.Tensor, text: torch.Tensor) -> dict[str, Any]:
    """What pairwise JEST needs from the learner: both towers' embeddings and its head."""
    return {
        "learner_embeddings": image.detach(),
        "learner_pair_embeddings": text.detach(),
        "learner_logit_scale": float(model.log_scale.exp().detach()),
        "learner_logit_bias": float(model.bias.detach()),
    }


def learner_scorer(model: TwoTower) -> Any:
    """A sync scorer: the current learner's feedback on a round's candidates."""

    @torch.no_grad()
    def score(candidates: dict[str, Any]) -> dict[str, Any]:
        image, text = model.embed(
            np.array(candidates["image_features"]), np.array(candidates["text_features"])
        )
        return learner_feedback(model, image, text)

    return score
