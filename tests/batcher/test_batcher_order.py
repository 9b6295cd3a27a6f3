"""Invariants of the serving order over grids of sizes, seeds and world sizes."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from batchcraft.batcher.config import JobConfig, Position
from batchcraft.batcher.job import Job
from batchcraft.batcher.order import EpochLayout, epoch_permutation, selection_rng
from batchcraft.batcher.served_dataset import CuratedDataset
from batchcraft.batcher.stream import RankStream
from batchcraft.errors import ConfigError


def rank_batches(
    layout: EpochLayout, seed: int, epoch: int, world_size: int
) -> list[list[np.ndarray]]:
    """Uniform serving of one epoch: per rank, the list of its batches (row positions)."""
    ids = pa.table({"id": [str(row) for row in range(layout.num_rows)]})
    dataset = CuratedDataset("rows", [Path(".")], [{}], ids)
    config = JobConfig(
        "rows",
        batch_size=layout.global_batch_size // world_size,
        world_size=world_size,
        seed=seed,
        last_batch=layout.last_batch,
    )
    job = Job("order", config, dataset)
    assert job.layout == layout
    per_rank = []
    for rank in range(world_size):
        stream = RankStream(job, rank, num_epochs=epoch + 1)
        stream.reset(Position(epoch, 0))
        per_rank.append([batch.positions for batch in stream])
    return per_rank


@pytest.mark.parametrize(
    ("num_rows", "batch_size", "world_size", "seed"),
    list(itertools.product([1, 7, 64, 101], [1, 3, 16], [1, 2, 3], [0, 5])),
)
def test_partial_rule_serves_every_row_once_with_equal_batch_counts(
    num_rows: int, batch_size: int, world_size: int, seed: int
) -> None:
    global_batch = batch_size * world_size
    layout = EpochLayout(num_rows, global_batch, global_batch, "partial")
    per_rank = rank_batches(layout, seed, epoch=0, world_size=world_size)
    served = np.concatenate([b for batches in per_rank for b in batches])
    assert sorted(served.tolist()) == list(range(num_rows))
    assert len({len(batches) for batches in per_rank}) == 1
    for step in range(layout.steps):
        sizes = [len(per_rank[r][step]) for r in range(world_size)]
        assert max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize(("num_rows", "global_batch"), [(10, 3), (64, 16), (5, 8)])
def test_drop_rule_serves_only_full_batches(num_rows: int, global_batch: int) -> None:
    layout = EpochLayout(num_rows, global_batch, global_batch, "drop")
    assert layout.steps == num_rows // global_batch
    assert all(layout.select_count(s) == global_batch for s in range(layout.steps))


def test_order_is_a_pure_function_of_seed_and_epoch() -> None:
    assert np.array_equal(epoch_permutation(50, 3, 1), epoch_permutation(50, 3, 1))
    assert not np.array_equal(epoch_permutation(50, 3, 1), epoch_permutation(50, 3, 2))
    assert not np.array_equal(epoch_permutation(50, 3, 1), epoch_permutation(50, 4, 1))


def test_pool_factor_tail_selects_proportionally() -> None:
    layout = EpochLayout(num_rows=45, pool_size=20, global_batch_size=4)
    assert layout.steps == 3
    assert [layout.select_count(s) for s in range(3)] == [4, 4, 1]


def test_invalid_layouts_name_the_bad_value() -> None:
    with pytest.raises(ConfigError, match="global_batch_size=0"):
        EpochLayout(10, 4, 0)
    with pytest.raises(ConfigError, match="last_batch='pad'"):
        EpochLayout(10, 4, 4, "pad")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="step=9"):
        EpochLayout(10, 4, 4).pool_bounds(9)


@pytest.mark.parametrize("seed", [0, 7, 2**40])
def test_selection_rng_is_seeded_by_the_documented_seed_sequence(seed: int) -> None:
    for epoch, step in [(0, 0), (1, 5), (3, 1000)]:
        expected = np.random.Generator(
            np.random.PCG64(np.random.SeedSequence([seed, epoch, step, 1]))
        )
        assert np.array_equal(
            selection_rng(seed, epoch, step).permutation(50), expected.permutation(50)
        )
