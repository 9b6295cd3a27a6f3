"""JEST learnability: pairwise sigmoid-loss matrices and chunked joint sampling."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from batchcraft._deps import require

DENSE_LIMIT = 1024
"""Pools up to this size get their learnability matrix computed whole (8 MiB of float64)."""


@dataclass(frozen=True)
class SigmoidLossParameters:
    """A SigLIP head: logits are ``scale · cos(image, text) + bias``."""

    scale: float
    bias: float


def _unit_rows(torch: Any, matrix: np.ndarray, device: Any) -> Any:
    array = np.ascontiguousarray(matrix, dtype=np.float32)
    # torch wants writable memory; pools of every row share the dataset's read-only columns
    tensor = torch.from_numpy(array if array.flags.writeable else array.copy()).to(device)
    return tensor / tensor.norm(dim=1, keepdim=True).clamp_min(1e-12)


class LearnabilityScorer:
    """Lazy access to JEST's learnability matrix ``S = L_learner − L_reference`` (B, B).

    ``L[i, j] = −log σ(label_ij · (scale · cos(image_i, text_j) + bias))`` with
    label +1 on the diagonal and −1 off it (SigLIP), for the learner's and the
    reference model's embeddings of both towers. Joint sampling only needs the
    diagonal and the rows and columns of chosen examples, so entries are
    computed on demand: about 2·b·B terms per model instead of B². Off the
    diagonal a term is ``softplus(z)``; on it ``softplus(−z) = softplus(z) − z``,
    so the diagonal is a vector correction of ``−(z_learner − z_reference)``.

    Rows whose learner embeddings are not finite (never scored, asynchronous
    mode) contribute zero learnability: every term involving them is 0.

    With ``per_example`` given instead of embeddings, S is that diagonal and
    zero elsewhere: selection is then independent (RHO-LOSS-like).

    The towers live on ``device`` (a torch device; default the CPU), and with
    ``bf16`` the off-diagonal products ``image_i · text_j`` are computed in bfloat16
    (each tower's rows rounded once); norms, the diagonal, softplus and every sum
    stay float32/float64. Results come back to the CPU as numpy.
    """

    def __init__(
        self,
        towers: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None,
        heads: tuple[SigmoidLossParameters, SigmoidLossParameters] | None = None,
        per_example: np.ndarray | None = None,
        device: Any = None,
        bf16: bool = False,
    ) -> None:
        self.torch = require("torch")
        self.device = self.torch.device("cpu") if device is None else device
        self.bf16 = bf16
        self._diagonal: np.ndarray | None = None
        self._dense: np.ndarray | None = None
        self._dense_symmetric: np.ndarray | None = None
        if per_example is not None:
            self.size = len(per_example)
            self.models: list[tuple[Any, Any, SigmoidLossParameters]] = []
            self.known: tuple[Any, Any] | None = None
            self.correction = np.asarray(per_example, dtype=np.float64)
            self.known_pairs = np.ones(self.size)
            return
        assert towers is not None and heads is not None
        learner_images, learner_texts, reference_images, reference_texts = towers
        known_images = np.isfinite(learner_images).all(axis=1)
        known_texts = np.isfinite(learner_texts).all(axis=1)
        self.size = len(learner_images)
        where = self.device
        self.models = [
            (
                _unit_rows(self.torch, np.where(known_images[:, None], learner_images, 0.0), where),
                _unit_rows(self.torch, np.where(known_texts[:, None], learner_texts, 0.0), where),
                heads[0],
            ),
            (
                _unit_rows(self.torch, reference_images, where),
                _unit_rows(self.torch, reference_texts, where),
                heads[1],
            ),
        ]
        # the factors of the off-diagonal products, rounded to bf16 once
        self._factors = [
            (images.to(self.torch.bfloat16), texts.to(self.torch.bfloat16))
            if bf16
            else (images, texts)
            for images, texts, _ in self.models
        ]
        self.known = None
        if not (known_images.all() and known_texts.all()):
            self.known = (
                self.torch.from_numpy(known_images.astype(np.float32)).to(where),
                self.torch.from_numpy(known_texts.astype(np.float32)).to(where),
            )
        logits = [
            self._numpy((images * texts).sum(dim=1) * head.scale + head.bias)
            for images, texts, head in self.models
        ]
        self.known_pairs = (known_images & known_texts).astype(np.float64)
        self.correction = -(logits[0] - logits[1]) * self.known_pairs

    def _off_diagonal(self, rows: np.ndarray | None, columns: np.ndarray | None) -> Any:
        """``S`` over rows × columns as if every entry were a negative pair; None = all."""
        torch = self.torch
        if not self.models:  # per-example learnability: nothing off the diagonal
            return torch.zeros(
                (
                    self.size if rows is None else len(rows),
                    self.size if columns is None else len(columns),
                ),
                device=self.device,
            )
        row_index = None if rows is None else self._index(rows)
        column_index = None if columns is None else self._index(columns)

        def take(values: Any, index: Any) -> Any:
            # index_select: the same rows as values[index], several times faster
            return values if index is None else torch.index_select(values, 0, index)

        terms = []
        for (images, texts), (_, _, head) in zip(self._factors, self.models, strict=True):
            image_part, text_part = take(images, row_index), take(texts, column_index)
            if self.bf16:
                logits = (image_part @ text_part.T).float().mul_(head.scale).add_(head.bias)
            else:
                bias = torch.tensor(head.bias, device=self.device)
                logits = torch.addmm(bias, image_part, text_part.T, alpha=head.scale)
            terms.append(torch.nn.functional.softplus(logits))
        block = terms[0].sub_(terms[1])
        if self.known is not None:
            known_rows = take(self.known[0], row_index)
            known_columns = take(self.known[1], column_index)
            block.mul_(known_rows[:, None] * known_columns[None, :])
        return block

    def _index(self, positions: np.ndarray) -> Any:
        return self.torch.from_numpy(np.ascontiguousarray(positions)).to(self.device)

    def _numpy(self, tensor: Any) -> np.ndarray:
        """``tensor`` as float64 numpy on the CPU."""
        return tensor.to(self.torch.float64).cpu().numpy()

    def block(self, rows: np.ndarray, columns: np.ndarray) -> Any:
        """``S[rows][:, columns]`` as a float32 torch tensor."""
        block = self._off_diagonal(rows, columns)
        row_positions, column_positions = np.nonzero(rows[:, None] == columns[None, :])
        if len(row_positions):
            corrections = self.torch.from_numpy(
                self.correction[rows[row_positions]].astype(np.float32)
            ).to(self.device)
            block[self._index(row_positions), self._index(column_positions)] += corrections
        return block

    def diagonal(self) -> np.ndarray:
        """``S_ii`` for every row: each example's own learnability, float64 (a fresh copy)."""
        if self._diagonal is None:
            self._diagonal = self._compute_diagonal()
        return self._diagonal.copy()

    def _compute_diagonal(self) -> np.ndarray:
        diagonal = self.correction.copy()
        for sign, (images, texts, head) in zip((1.0, -1.0), self.models, strict=False):
            logits = (images * texts).sum(dim=1) * head.scale + head.bias
            softplus = self._numpy(self.torch.nn.functional.softplus(logits))
            diagonal += sign * softplus * self.known_pairs
        return diagonal

    def full(self) -> Any:
        """The whole (B, B) matrix (for tests and small pools)."""
        everything = np.arange(self.size, dtype=np.int64)
        return self.block(everything, everything)

    def dense(self) -> np.ndarray | None:
        """The whole matrix as float64 numpy, computed once, for pools of at most
        `DENSE_LIMIT` rows (None above): one B×B pass costs less than the many small
        torch calls of the lazy blocks (320 rows: about 1 ms against 3 ms)."""
        if self.size > DENSE_LIMIT or not self.models:
            return None
        if self._dense is None:
            self._dense = self._numpy(self.full())
        return self._dense

    def pair_gain(self, chosen: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """``Σ_{j ∈ chosen} (S_ij + S_ji)`` for each row i of ``rows`` (default: all), float64."""
        positions = np.arange(self.size) if rows is None else rows
        is_chosen = np.zeros(self.size, dtype=bool)
        is_chosen[chosen] = True
        on_diagonal = is_chosen[positions]  # np.isin(positions, chosen), without its sort
        symmetric = self._symmetric()
        if symmetric is not None:  # its diagonal already holds the correction
            return symmetric[chosen].sum(axis=0)[positions]
        if not self.models:
            gain = np.zeros(len(positions))
        else:  # rows and columns of the chosen only, not the whole matrix
            from_rows = self._off_diagonal(chosen, rows).sum(dim=0)
            from_columns = self._off_diagonal(rows, chosen).sum(dim=1)
            gain = self._numpy(from_rows + from_columns)
        gain[on_diagonal] += 2.0 * self.correction[positions[on_diagonal]]
        return gain

    def _symmetric(self) -> np.ndarray | None:
        """``S + Sᵀ`` of a dense pool (one row gather per chunk then gives the gains)."""
        dense = self.dense()
        if dense is None:
            return None
        if self._dense_symmetric is None:
            self._dense_symmetric = dense + dense.T
        return self._dense_symmetric

    @property
    def independent(self) -> bool:
        """Whether S has no pair terms (per-example learnability): rows are scored alone."""
        return not self.models

    def sub_batch_learnability(self, indices: np.ndarray) -> float:
        """Total learnability of a sub-batch divided by its size (SigLIP's loss normalisation)."""
        if self.independent:  # only the diagonal: no (b, b) block to build
            return float(self.correction[indices].sum()) / max(len(indices), 1)
        dense = self.dense()
        if dense is not None:
            return float(dense[np.ix_(indices, indices)].sum()) / max(len(indices), 1)
        return float(self.block(indices, indices).sum()) / max(len(indices), 1)


def joint_sample(
    scorer: LearnabilityScorer,
    batch_size: int,
    num_chunks: int,
    rng: np.random.Generator,
    first_chunk: Literal["diagonal", "uniform"] = "diagonal",
    temperature: float = 1.0,
) -> np.ndarray:
    """JEST's chunked joint sampling.

    The batch is drawn in ``num_chunks`` chunks. Each chunk is sampled without
    replacement ∝ softmax(conditional learnability / temperature), where a
    candidate i's conditional learnability given the chosen rows C is
    ``S_ii + Σ_{j∈C} (S_ij + S_ji)`` — exactly what adding i adds to the
    sub-batch's total learnability ``Σ_{i,j∈C} S_ij``. Sampling without
    replacement from a softmax is done by Gumbel top-k.

    Returns:
        int64 positions of the ``batch_size`` chosen rows, in draw order.
    """
    size = scorer.size
    conditional = scorer.diagonal()
    if getattr(scorer, "independent", False) and first_chunk == "diagonal":  # else: joint
        # No pair terms: the conditional learnability never changes, so the chunks are
        # one draw without replacement ∝ softmax(S_ii / temperature), in one Gumbel top-k
        # (the same distribution as chunk after chunk, at a sixteenth of the cost).
        return _gumbel_top_k(conditional / temperature, batch_size, rng)
    available = np.ones(size, dtype=bool)
    picked: list[np.ndarray] = []
    for chunk_index, chunk in enumerate(np.array_split(np.arange(batch_size), num_chunks)):
        if len(chunk) == 0:
            continue
        uniform = chunk_index == 0 and first_chunk == "uniform"
        logits = np.zeros(size) if uniform else conditional / temperature
        perturbed = np.where(available, logits + rng.gumbel(size=size), -np.inf)
        chosen = np.argpartition(-perturbed, len(chunk) - 1)[: len(chunk)]
        chosen = chosen[np.argsort(-perturbed[chosen], kind="stable")].astype(np.int64)
        available[chosen] = False
        picked.append(chosen)
        if chunk_index < num_chunks - 1:  # later chunks only need the still-available rows
            remaining = np.flatnonzero(available)
            conditional[remaining] += scorer.pair_gain(chosen, remaining)
    return np.concatenate(picked).astype(np.int64)


def _gumbel_top_k(logits: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` rows drawn without replacement ∝ softmax(logits), in draw order (int64)."""
    perturbed = logits + rng.gumbel(size=len(logits))
    chosen = np.argpartition(-perturbed, count - 1)[:count]
    return chosen[np.argsort(-perturbed[chosen], kind="stable")].astype(np.int64)
