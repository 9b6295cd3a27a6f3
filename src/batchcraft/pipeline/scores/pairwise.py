"""Reference losses of paired rows from the curation embeddings: pure numpy, no Spark.

JEST (Evans et al., 2024) scores examples by learnability, the learner's loss minus a
reference model's. For paired data the curation embeddings (text tower ``embedding``,
pair tower ``pair_embedding``) are such a reference model, and each row's reference loss
is the SigLIP sigmoid loss of its pair against ``K`` negatives from the data::

    ref_loss_i = softplus(-(t·cos(e_i, p_i) + b)) + (1/K) Σ_{j ∈ neg(i)} softplus(t·cos(e_i, p_j) + b)

the pair's own term (label +1) plus the mean of its negative terms (label −1), with the
temperature ``t`` and bias ``b`` the ``jest`` selector uses for its reference model
(``reference_logit_scale`` = 10, ``reference_logit_bias`` = −10). A matched pair scores
low; a pair whose texts do not belong together, or whose text resembles other rows'
pairs as much as its own, scores high. Dividing the negative terms by ``K`` keeps the
loss of one row independent of how many negatives were drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from batchcraft.dataset.arrays import to_matrix
from batchcraft.pipeline.embedding.vectors import unit_norm

LOSS_FORMULA = (
    "softplus(-(t*cos(e_i,p_i)+b)) + mean over K negatives j of softplus(t*cos(e_i,p_j)+b)"
)
"""The reference loss, as the manifest records it."""
ROWS_PER_SCORE_GROUP = 4096
"""About how many rows form a group, the rows whose pairs a row's negatives are drawn from."""
_BLOCK_ROWS = 512  # rows whose similarities to every pair are held at once


@dataclass(frozen=True)
class PairScoring:
    """How reference losses are computed.

    Attributes:
        logit_scale: SigLIP temperature ``t`` (> 0).
        logit_bias: SigLIP bias ``b``.
        num_negatives: Negatives ``K`` drawn for each row (fewer in a group of at most K rows).
        seed: Seed of the draws (with the group's number).
    """

    logit_scale: float
    logit_bias: float
    num_negatives: int
    seed: int


def softplus(values: np.ndarray) -> np.ndarray:
    """``log(1 + exp(x))``, without overflow: ``−log σ(−x)``."""
    return np.logaddexp(0.0, values)


def draw_negatives(num_rows: int, num_negatives: int, rng: np.random.Generator) -> np.ndarray:
    """The negatives of each of ``num_rows`` rows: ``(num_rows, K)`` row positions.

    ``K = min(num_negatives, num_rows − 1)``. Rows are placed in a random order and row
    ``i`` takes the rows at ``K`` distinct random offsets after it (cyclically): its
    negatives are ``K`` distinct rows other than itself, and every row is the negative of
    exactly ``K`` rows (none weighs more than another).
    """
    count = min(num_negatives, num_rows - 1)
    if count <= 0:
        return np.empty((num_rows, 0), dtype=np.int64)
    order = rng.permutation(num_rows)
    offsets = rng.choice(np.arange(1, num_rows), size=count, replace=False)
    position = np.empty(num_rows, dtype=np.int64)
    position[order] = np.arange(num_rows)
    return order[(position[:, None] + offsets[None, :]) % num_rows]


def pair_sigmoid_losses(
    texts: np.ndarray,
    pairs: np.ndarray,
    negatives: np.ndarray,
    logit_scale: float,
    logit_bias: float,
) -> np.ndarray:
    """Each row's SigLIP loss: its pair's term plus the mean of its negatives' terms.

    Args:
        texts: ``(n, d)`` text embeddings ``e`` (scaled to unit norm here).
        pairs: ``(n, d)`` pair embeddings ``p`` of the same rows.
        negatives: ``(n, K)`` positions of each row's negatives (`draw_negatives`); with
            ``K = 0`` the loss is the pair's term alone.
        logit_scale: Temperature ``t``.
        logit_bias: Bias ``b``.

    Returns:
        ``(n,)`` float32 losses (see the module docstring for the formula).
    """
    texts, pairs = unit_norm(texts).astype(np.float64), unit_norm(pairs).astype(np.float64)
    own = np.einsum("ij,ij->i", texts, pairs) * logit_scale + logit_bias
    losses = softplus(-own)
    if negatives.shape[1]:
        for start in range(0, len(texts), _BLOCK_ROWS):
            block = slice(start, start + _BLOCK_ROWS)
            similarities = texts[block] @ pairs.T  # (block, n): one matrix product
            drawn = np.take_along_axis(similarities, negatives[block], axis=1)
            losses[block] += softplus(drawn * logit_scale + logit_bias).mean(axis=1)
    return losses.astype(np.float32)


def group_reference_losses(table: pa.Table, scoring: PairScoring, group: int) -> pa.Table:
    """``id`` and ``ref_loss`` of one group's rows (``id``, ``embedding``, ``pair_embedding``).

    Negatives come from the same group, drawn by ``scoring.seed`` and the group's number
    over its rows in id order: the same rows give the same losses however Spark splits
    or orders them.
    """
    table = table.sort_by("id")
    rng = np.random.default_rng([scoring.seed, group])
    negatives = draw_negatives(table.num_rows, scoring.num_negatives, rng)
    losses = pair_sigmoid_losses(
        to_matrix(table.column("embedding")),
        to_matrix(table.column("pair_embedding")),
        negatives,
        scoring.logit_scale,
        scoring.logit_bias,
    )
    return pa.table({"id": table.column("id"), "ref_loss": pa.array(losses, pa.float32())})
