"""A curated dataset with planted noisy labels, and a learner that cannot learn them:
the RHO-LOSS / JEST setting for tests of feedback selectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from batchcraft.batcher.served_dataset import CuratedDataset
from batchcraft.dataset import layout
from batchcraft.dataset.arrays import to_fixed_size_list
from batchcraft.dataset.manifest import write_manifest
from batchcraft.dataset.schema import SCHEMA_VERSION

NUM_ROWS, DIM, CLUSTERS, NOISE = 2000, 16, 20, 0.3


def noisy_dataset(root: Path) -> tuple[CuratedDataset, np.ndarray]:
    """Clustered rows, 30% with a flipped label: the reference model (trained on clean
    data) gives those a high loss. Returns the dataset and the noisy mask."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(CLUSTERS, DIM))
    cluster = rng.integers(0, CLUSTERS, NUM_ROWS)
    vectors = centres[cluster] + 0.3 * rng.normal(size=(NUM_ROWS, DIM))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    noisy = rng.random(NUM_ROWS) < NOISE
    ref_loss = np.where(noisy, 2.5, 0.2) + 0.1 * rng.random(NUM_ROWS)
    table = pa.table(
        {
            "id": [f"r{i:05d}" for i in range(NUM_ROWS)],
            "embedding": to_fixed_size_list(vectors),
            "cluster": pa.array(cluster, pa.int32()),
            "ref_loss": pa.array(ref_loss, pa.float32()),
            "keep": pa.array(np.ones(NUM_ROWS, bool)),
        }
    )
    layout.data_dir(root).mkdir(parents=True)
    pq.write_table(table, root / layout.shard_name(0))
    write_manifest(root, {"schema_version": SCHEMA_VERSION})
    return CuratedDataset.open(root, "noisy"), noisy


class Learner:
    """A trainer's per-row loss: a noisy label stays unlearnable (high loss), a clean row's
    loss drops each time it is trained on."""

    def __init__(self, noisy: np.ndarray) -> None:
        self.noisy = noisy
        self.visits = np.zeros(len(noisy))

    def train(self, rows: np.ndarray) -> np.ndarray:
        loss = np.where(self.noisy[rows], 2.6, 1.5 * 0.5 ** self.visits[rows])
        self.visits[rows] += 1
        return loss.astype(np.float32)
