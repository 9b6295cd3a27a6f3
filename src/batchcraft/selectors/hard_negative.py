"""`hard_negative`: NGAME negative-mining-aware mini-batches, planned per epoch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from batchcraft.errors import ConfigError
from batchcraft.selectors.balanced_clustering import balanced_clusters, batches_from_clusters
from batchcraft.selectors.base import BaseSelector, Selection, check_batch_size, check_range
from batchcraft.selectors.negative_mining import InBatchScores, mine_hard_negatives
from batchcraft.selectors.pool import Pool

MAX_MINED_NEGATIVES = 1024
"""Most mined negatives per anchor, and most top-ranked ones skipped (each anchor's search
goes twice their sum deep, and the result holds one row per anchor of that width)."""


@dataclass(frozen=True)
class HardNegativeSelector(BaseSelector):
    """Batches of similar anchors, so in-batch negatives are hard (NGAME).

    NGAME (Dahiya et al., "NGAME: Negative Mining-aware Mini-batching for
    Extreme Classification", WSDM 2023): cluster the anchors by their current
    embeddings into balanced clusters (recursive balanced 2-means), shuffle
    the clusters and cut batches from consecutive clusters. The other anchors'
    positives in a batch are then hard negatives, at no per-anchor ANN cost.
    A curriculum grows the cluster size: ``initial_cluster_size`` (1 = random
    batches) doubling every ``doubling_every`` epochs up to ``cluster_size``.

    This selector is epoch-level (``epoch_level = True``): the batcher calls
    ``plan_epoch(all_rows, batch_size, rng, epoch=e)`` once per epoch (every
    row exactly once), then ``select(all_rows.take(batch), len(batch), rng)``
    per batch, which keeps all rows and adds ``info["false_negative_mask"]``,
    a (b, b) bool array: True where row j's positive is also relevant to
    anchor i (same label, same positive text, or within
    ``false_negative_margin`` of i's own positive score), to be excluded from
    i's negatives by the trainer. Clustering uses ``learner_embeddings`` when
    the trainer has sent them (refreshing the clusters with the current
    encoder), otherwise the dataset ``embeddings``.

    Columns: ``embeddings``; optional ``pair_embeddings`` (positives; hardness
    and same-positive masking), ``labels``, ``learner_embeddings``,
    ``learner_pair_embeddings``.

    Example:
        >>> selector = HardNegativeSelector(cluster_size=4, initial_cluster_size=4)
        >>> pool = Pool(embeddings=np.random.default_rng(0).normal(size=(32, 8)))
        >>> plan = selector.plan_epoch(pool, 8, np.random.default_rng(0), epoch=0)
        >>> sorted(np.concatenate(plan).tolist()) == list(range(32))
        True
    """

    name: ClassVar[str] = "hard_negative"
    epoch_level: ClassVar[bool] = True
    cluster_size: int = 16
    initial_cluster_size: int = 1
    doubling_every: int = 1
    false_negative_margin: float | None = None
    num_mined_negatives: int = 0
    skip_top: int = 0
    hardness_top: int = 10

    def __post_init__(self) -> None:
        super().__post_init__()  # types: every size is an integer
        for name in ("cluster_size", "initial_cluster_size", "doubling_every", "hardness_top"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)} must be >= 1")
        if self.initial_cluster_size > self.cluster_size:
            raise ConfigError(
                f"initial_cluster_size={self.initial_cluster_size} must be <= cluster_size={self.cluster_size}"
            )
        for name in ("num_mined_negatives", "skip_top"):  # FAISS searches their sum deep
            if not 0 <= getattr(self, name) <= MAX_MINED_NEGATIVES:
                raise ConfigError(
                    f"{name}={getattr(self, name)} must be in [0, {MAX_MINED_NEGATIVES}]"
                )
        if self.false_negative_margin is not None:
            check_range("false_negative_margin", self.false_negative_margin, -2.0, 2.0)

    @property
    def required_columns(self) -> frozenset[str]:
        return frozenset({"embeddings"})

    @property
    def optional_columns(self) -> frozenset[str]:
        return frozenset(
            {"pair_embeddings", "labels", "learner_embeddings", "learner_pair_embeddings"}
        )

    def cluster_size_at(self, epoch: int) -> int:
        """The curriculum: cluster size used in ``epoch`` (0-based)."""
        if epoch < 0:
            raise ConfigError(f"{epoch=} must be >= 0")
        doublings = min(epoch // self.doubling_every, 32)
        return min(self.cluster_size, self.initial_cluster_size * 2**doublings)

    def plan_epoch(
        self, pool: Pool, batch_size: int, rng: np.random.Generator, epoch: int = 0
    ) -> list[np.ndarray]:
        """All of ``pool``'s rows as batches of clustered anchors, each row exactly once.

        Returns:
            int64 position arrays of ``batch_size`` rows (the last may be shorter).
        """
        check_batch_size(batch_size)
        self.check_pool(pool)
        return self._plan(pool, batch_size, rng, self.cluster_size_at(epoch))

    def _plan(
        self, pool: Pool, batch_size: int, rng: np.random.Generator, cluster_size: int
    ) -> list[np.ndarray]:
        # the freshest view of the anchors: the trainer's encoder when it has reported one
        anchors = (
            pool.learner_embeddings if pool.learner_embeddings is not None else pool.embeddings
        )
        assert anchors is not None
        return batches_from_clusters(balanced_clusters(anchors, cluster_size, rng), batch_size, rng)

    def mine_negatives(self, pool: Pool, anchor_rows: np.ndarray) -> np.ndarray:
        """Explicit hard negatives (FAISS) for ``anchor_rows``, among all of ``pool``'s positives.

        Returns:
            (len(anchor_rows), num_mined_negatives) pool positions, -1 padded.
        """
        anchors, positives = self._towers(pool)
        if positives is None:
            raise ConfigError("mining negatives needs pair_embeddings (the positives)")
        return mine_hard_negatives(
            anchors,
            positives,
            num_negatives=self.num_mined_negatives,
            skip_top=self.skip_top,
            margin=self.false_negative_margin or 0.0,
            labels=pool.labels,
            anchor_rows=anchor_rows,
        )

    def _select(self, pool: Pool, batch_size: int, rng: np.random.Generator) -> Selection:
        if len(pool) <= batch_size:  # a planned batch: keep it whole, in order
            indices = np.arange(len(pool), dtype=np.int64)
            batch = pool
        else:  # a pool larger than the batch: the first batch of a plan over it
            indices = self._plan(pool, batch_size, rng, self.cluster_size)[0]
            batch = pool.take(indices)
        anchors, positives = self._towers(batch)
        scores = InBatchScores(anchors, positives)
        mask = scores.false_negative_mask(batch.labels, self.false_negative_margin)
        info: dict[str, Any] = {
            "selector": self.name,
            "false_negative_mask": mask,
            "accidental_positives": int(mask.sum()),
            "top_negative_similarity": scores.top_negative_similarity(mask, self.hardness_top),
        }
        if self.num_mined_negatives > 0 and positives is not None:
            info["mined_negatives"] = self.mine_negatives(pool, indices)
        return Selection(indices, None, info)

    @staticmethod
    def _towers(pool: Pool) -> tuple[np.ndarray, np.ndarray | None]:
        """Anchor and positive embeddings from one encoder: the learner's if complete."""
        if pool.learner_embeddings is not None and pool.learner_pair_embeddings is not None:
            return pool.learner_embeddings, pool.learner_pair_embeddings
        assert pool.embeddings is not None
        return pool.embeddings, pool.pair_embeddings
