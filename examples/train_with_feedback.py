"""Train on batches that a feedback selector chooses, and report what it needs back.

A linear probe on each row's curated ``embedding`` learns its ``label``. After every
step the loop reports the per-row losses of the batch it trained on
(``client.report(ids, losses=...)``): ``jest`` / ``jest_independent`` then pick the
next batches by learnability (the learner's loss minus the dataset's ``ref_loss``),
so rows with a label the reference model finds unlearnable are skipped. Rows the
trainer has not reported yet get an estimate on the server (their ``cluster``'s mean
reported loss). Per-row losses need the dataset's ``ref_loss`` column; without it
``jest`` keeps serving uniform batches (the client warns): use ``--pairwise``.

With ``--pairwise``, the model is two linear towers over ``embedding`` and
``pair_embedding`` trained with the SigLIP loss, and it reports both towers'
embeddings, its logit scale and bias (what pairwise JEST scores a super-batch with).

Against the demo dataset (``make demo``):

    batchcraft serve demo/curated --name demo
    python examples/train_with_feedback.py --dataset demo --selector jest

The first batches of a run are uniform (``selector=uniform``, ``fallback_from=jest``
in their info): the server selects a few batches ahead of the first report.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.nn import functional

from batchcraft.service import BatchClient


@dataclass
class Summary:
    """What the run did: the loss of every step and the selector that made each batch."""

    losses: list[float] = field(default_factory=list)
    served_by: list[str] = field(default_factory=list)


class LabelIndex:
    """Class indices for label values (ints or strings), assigned on first sight."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.index: dict[Any, int] = {}

    def __call__(self, labels: Any) -> torch.Tensor:
        for label in labels:
            if label not in self.index:
                if len(self.index) == self.num_classes:
                    raise SystemExit(f"more than --num-classes={self.num_classes} labels")
                self.index[label] = len(self.index)
        return torch.tensor([self.index[label] for label in labels])


class TwoTowerProbe(torch.nn.Module):
    """Linear maps of both curated embeddings, with a SigLIP head (scale 10, bias -10)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.image, self.text = torch.nn.Linear(dim, dim), torch.nn.Linear(dim, dim)
        self.log_scale = torch.nn.Parameter(torch.tensor(float(np.log(10.0))))
        self.bias = torch.nn.Parameter(torch.tensor(-10.0))

    def forward(self, images: torch.Tensor, texts: torch.Tensor) -> tuple[Any, Any, Any]:
        image = functional.normalize(self.image(images), dim=1)
        text = functional.normalize(self.text(texts), dim=1)
        logits = image @ text.T * self.log_scale.exp() + self.bias
        signs = 2 * torch.eye(len(image)) - 1  # +1 for a row's own pair, -1 for the others
        return -functional.logsigmoid(signs * logits).sum() / len(image), image, text


def train_probe(client: BatchClient, args: argparse.Namespace, summary: Summary) -> None:
    """A linear probe on ``embedding`` predicting the label column; per-row losses back."""
    labels = LabelIndex(args.num_classes)
    model: torch.nn.Module | None = None
    for step, batch in enumerate(client):
        inputs = torch.tensor(batch["embedding"])
        if model is None:
            model = torch.nn.Linear(inputs.shape[1], args.num_classes)
            optimiser = torch.optim.Adam(model.parameters(), lr=args.learning_rate)
        losses = functional.cross_entropy(
            model(inputs), labels(batch[args.label_column]), reduction="none"
        )
        optimiser.zero_grad()
        losses.mean().backward()
        optimiser.step()
        client.report(batch["id"], losses=losses.detach())  # what loss-based selectors use
        record(client, summary, float(losses.detach().mean()))
        if step + 1 == args.steps:
            break


def train_pairs(client: BatchClient, args: argparse.Namespace, summary: Summary) -> None:
    """Two towers over ``embedding``/``pair_embedding``; both towers' embeddings back."""
    model: TwoTowerProbe | None = None
    for step, batch in enumerate(client):
        images, texts = torch.tensor(batch["embedding"]), torch.tensor(batch["pair_embedding"])
        if model is None:
            model = TwoTowerProbe(images.shape[1])
            optimiser = torch.optim.Adam(model.parameters(), lr=args.learning_rate)
        loss, image, text = model(images, texts)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        client.report(
            batch["id"],
            learner_embeddings=image.detach(),
            learner_pair_embeddings=text.detach(),
            learner_logit_scale=float(model.log_scale.detach().exp()),
            learner_logit_bias=float(model.bias.detach()),
        )
        record(client, summary, float(loss.detach()))
        if step + 1 == args.steps:
            break


def record(client: BatchClient, summary: Summary, loss: float) -> None:
    meta = client.last_meta
    summary.losses.append(loss)
    summary.served_by.append(meta.selector if meta is not None else "?")
    if len(summary.losses) % 20 == 0:
        served = summary.served_by[-20:]
        print(f"step {len(summary.losses)}: loss {np.mean(summary.losses[-20:]):.4f}, "
              f"batches by {dict(zip(*np.unique(served, return_counts=True), strict=True))}")  # fmt: skip


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="localhost:50051", help="host:port of the server")
    parser.add_argument("--dataset", default="demo", help="registered dataset name")
    parser.add_argument("--selector", default="jest", help="jest, jest_independent, uniform ...")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--label-column", default="label", help="the column the probe learns")
    parser.add_argument("--num-classes", type=int, default=64, help="the probe's outputs")
    parser.add_argument("--learning-rate", type=float, default=1e-2)
    parser.add_argument("--pairwise", action="store_true", help="two towers, pairwise JEST")
    parser.add_argument("--job", help="job id (default: a new job each run)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> Summary:
    args = parse_arguments(argv)
    torch.manual_seed(0)
    columns = ["id", "embedding", "pair_embedding" if args.pairwise else args.label_column]
    job = args.job or f"example-{np.random.default_rng().integers(1 << 62)}"
    client = BatchClient(args.target, args.dataset, args.selector, args.batch_size,
                         columns=columns, job=job, num_epochs=0, max_in_flight=2)  # fmt: skip
    summary = Summary()
    with client:
        (train_pairs if args.pairwise else train_probe)(client, args, summary)
    return summary


if __name__ == "__main__":
    main()
