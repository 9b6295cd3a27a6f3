"""Jobs: epochs over ranks, resume from checkpoints, feedback-driven selections."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from loss_selector import TopLossSelector

from batchcraft.batcher.config import JobConfig, Position, StreamConfig
from batchcraft.batcher.datasets import DatasetRegistry
from batchcraft.batcher.errors import JobConflictError, UnknownDatasetError
from batchcraft.batcher.job import Job
from batchcraft.batcher.pools import PoolBuilder
from batchcraft.batcher.registry import JobRegistry
from batchcraft.batcher.served_dataset import CuratedDataset
from batchcraft.batcher.stream import RankStream
from batchcraft.errors import ConfigError
from batchcraft.selectors import SELECTORS


@pytest.fixture
def top_loss(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(SELECTORS, TopLossSelector.name, TopLossSelector)


def serve(job: Job, rank: int, start: Position, count: int) -> list[tuple[Position, list[str]]]:
    """``count`` batches of ``rank`` from ``start``, advancing its cursor like a session."""
    stream = RankStream(job, rank)
    stream.reset(start)
    out = []
    for _ in range(count):
        batch = stream.next()
        out.append((batch.position, job.dataset.ids[batch.positions].tolist()))
        job.advance(rank, stream.position)
    return out


@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_uniform_epoch_serves_kept_ids_once_over_disjoint_ranks(
    dataset: CuratedDataset, world_size: int
) -> None:
    job = Job("j", JobConfig("news", batch_size=4, world_size=world_size, seed=1), dataset)
    steps = job.steps_in(0)
    per_rank = [serve(job, rank, Position(), steps) for rank in range(world_size)]
    served = [i for batches in per_rank for _, ids in batches for i in ids]
    assert sorted(served) == sorted(dataset.ids.tolist())
    assert {len(batches) for batches in per_rank} == {steps}
    assert job.next_position(Position(0, steps - 1)) == Position(1, 0)


def test_same_seed_same_sequence_other_seed_differs(dataset: CuratedDataset) -> None:
    def run(seed: int) -> list[list[str]]:
        job = Job("j", JobConfig("news", batch_size=8, seed=seed), dataset)
        return [ids for _, ids in serve(job, 0, Position(), 15)]

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_a_rank_going_back_an_epoch_reuses_its_order(
    dataset: CuratedDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    import batchcraft.batcher.job as job_module

    computed: list[int] = []
    original = job_module.epoch_permutation

    def counting(num_rows: int, seed: int, epoch: int) -> np.ndarray:
        computed.append(epoch)
        return original(num_rows, seed, epoch)

    monkeypatch.setattr(job_module, "epoch_permutation", counting)
    job = Job("j", JobConfig("news", batch_size=8, seed=0), dataset)
    for epoch in [5, 6, 0, 0, 6, 0, 5]:  # e.g. a rank resumed from an old checkpoint
        job.rank_batch(Position(epoch, 0), 0)
        job.rank_batch(Position(epoch, 1), 0)
    assert computed == [5, 6, 0]


def test_resume_from_checkpoint_continues_identically(
    dataset: CuratedDataset, tmp_path: Path
) -> None:
    config = JobConfig("news", batch_size=5, world_size=2, seed=7)
    uninterrupted = serve(Job("j", config, dataset), 1, Position(), 30)

    registry = JobRegistry(DatasetRegistry([dataset]), tmp_path, fsync=False)
    first = serve(registry.get_or_create("j", config), 1, Position(), 12)
    registry.save_all()
    restarted = JobRegistry(DatasetRegistry([dataset]), tmp_path, fsync=False)
    job = restarted.get_or_create("j", config)
    assert job.cursors[1] == job.next_position(first[-1][0])
    rest = serve(job, 1, job.cursors[1], 18)
    assert first + rest == uninterrupted


def test_feedback_changes_later_selections(dataset: CuratedDataset, top_loss: None) -> None:
    job = Job("j", JobConfig("news", selector="test_top_loss", batch_size=4), dataset)
    first = job.rank_batch(Position(0, 0), 0)
    assert first.metrics["selector"] == "uniform"  # no losses yet: uniform warm-up
    candidates = job.pool_positions(Position(0, 1))
    losses = np.zeros(len(candidates), np.float32)
    losses[-4:] = 10.0
    job.feedback.update(candidates, {"learner_losses": losses})
    second = job.rank_batch(Position(0, 1), 0)
    assert sorted(second.positions.tolist()) == sorted(candidates[-4:].tolist())
    assert second.arrays["mask"].shape == (4,)


def test_warm_up_without_feedback_gathers_no_pool(
    dataset: CuratedDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before any learner scores arrive, jest falls back to uniform: gathering its pool
    # (embeddings of every candidate) first would be work thrown away on every batch.
    built: list[int] = []
    build = PoolBuilder.build
    monkeypatch.setattr(
        PoolBuilder, "build", lambda self, *args: (built.append(1), build(self, *args))[1]
    )
    job = Job("j", JobConfig("news", selector="jest", batch_size=4), dataset)
    warm = job.rank_batch(Position(0, 0), 0)
    assert warm.metrics == {"selector": "uniform", "fallback_from": "jest"} and not built
    candidates = job.pool_positions(Position(0, 1))
    job.feedback.update(candidates, {"learner_losses": np.arange(len(candidates), dtype=float)})
    scored = job.rank_batch(Position(0, 1), 0)
    assert scored.metrics["selector"] == "jest" and built == [1]


def test_feedback_selection_is_cached_and_survives_restart(
    dataset: CuratedDataset, tmp_path: Path, top_loss: None
) -> None:
    config = JobConfig("news", selector="test_top_loss", batch_size=3, world_size=2)
    registry = JobRegistry(DatasetRegistry([dataset]), tmp_path, fsync=False)
    job = registry.get_or_create("j", config)
    job.feedback.update(
        np.arange(dataset.num_rows), {"learner_losses": np.arange(dataset.num_rows)}
    )
    rank0 = job.rank_batch(Position(0, 2), 0)
    registry.save(job)
    job2 = JobRegistry(DatasetRegistry([dataset]), tmp_path, fsync=False).get_or_create("j", config)
    job2.feedback.update(
        np.arange(dataset.num_rows), {"learner_losses": -np.arange(dataset.num_rows)}
    )
    rank1 = job2.rank_batch(Position(0, 2), 1)
    assert set(rank0.positions) | set(rank1.positions) == set(
        job.selection(Position(0, 2)).positions
    )
    assert not set(rank0.positions) & set(rank1.positions)


def test_sync_round_collects_every_rank_before_selecting(
    dataset: CuratedDataset, top_loss: None
) -> None:
    job = Job(
        "j", JobConfig("news", "test_top_loss", batch_size=2, world_size=2, scoring="sync"), dataset
    )
    assert job.needs_scores
    scoring = job.scoring_round(Position(0, 0))
    assert scoring is not None
    slices = [scoring.slice_for(rank) for rank in range(2)]
    assert sorted(np.concatenate(slices).tolist()) == sorted(
        job.pool_positions(Position(0, 0)).tolist()
    )
    for rank, part in enumerate(slices):
        job.feedback.update(part, {"learner_losses": np.full(len(part), float(rank))})
        scoring.mark_scored(rank)
    assert scoring.wait(lambda: False, timeout=1.0)
    assert set(job.selection(Position(0, 0)).positions) == set(slices[1].tolist())
    assert job.scoring_round(Position(0, 0)) is None


def test_registry_errors(dataset: CuratedDataset) -> None:
    registry = JobRegistry(DatasetRegistry([dataset]))
    with pytest.raises(
        UnknownDatasetError, match=r"unknown dataset 'other'; registered: \['news'\]"
    ):
        registry.get_or_create("j", JobConfig("other"))
    registry.get_or_create("j", JobConfig("news", batch_size=2))
    with pytest.raises(JobConflictError, match="job 'j' is running"):
        registry.get_or_create("j", JobConfig("news", batch_size=3))
    with pytest.raises(ConfigError, match="unknown selector 'nope'"):
        registry.get_or_create("k", JobConfig("news", selector="nope"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size=0"),
        ({"world_size": 0}, "world_size=0"),
        ({"seed": -1}, "seed=-1"),
        ({"scoring": "later"}, "scoring='later'"),
    ],
)
def test_job_config_names_bad_values(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        JobConfig("news", **kwargs)


def test_stream_config_checks_rank_and_columns() -> None:
    job = JobConfig("news", world_size=2)
    with pytest.raises(ConfigError, match="rank=2 must be < world_size=2"):
        StreamConfig(rank=2).check_against(job, ["id"])
    with pytest.raises(ConfigError, match="unknown column 'nope'"):
        StreamConfig(columns=("id", "nope")).check_against(job, ["id"])


def test_selector_needing_absent_dataset_columns_is_rejected(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from batchcraft.synth.curated import write_curated_dataset

    root = write_curated_dataset(tmp_path / "d", num_rows=10, num_shards=1)
    path = root / "data" / "part-00000.parquet"
    pq.write_table(pq.read_table(path).drop_columns(["concepts"]), path)
    with pytest.raises(ConfigError, match=r"needs dataset columns \['concepts'\]"):
        Job("j", JobConfig("d", selector="concept"), CuratedDataset.open(root, "d"))


@pytest.mark.parametrize("name", sorted(SELECTORS))
def test_every_selector_serves_an_epoch_without_repeats(tmp_path: Path, name: str) -> None:
    from batchcraft.synth.curated import write_curated_dataset

    root = write_curated_dataset(tmp_path / "d", num_rows=120, num_shards=2, with_pairs=True)
    dataset = CuratedDataset.open(root, "d")
    job = Job("j", JobConfig("d", selector=name, batch_size=4, world_size=2), dataset)
    per_rank = [serve(job, rank, Position(), job.steps_in(0)) for rank in range(2)]
    served = [i for batches in per_rank for _, ids in batches for i in ids]
    assert len(served) == len(set(served)) > 0
    assert set(served) <= set(dataset.ids.tolist())
    assert all(len(ids) <= 4 for batches in per_rank for _, ids in batches)


def test_checkpoint_directories_keep_their_names(tmp_path: Path) -> None:
    from batchcraft.batcher.checkpoint import job_directory

    # Existing checkpoints must still be found: readable prefix (leading dots kept) + hash.
    assert job_directory(tmp_path, ".exp1").name == ".exp1-" + _sha12(".exp1")
    assert job_directory(tmp_path, "a/b c").name == "a_b_c-" + _sha12("a/b c")


def _sha12(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:12]


@pytest.mark.parametrize(("selector", "batch_size"), [("hard_negative", 84), ("coreset", 9)])
def test_dropping_the_only_batch_of_every_epoch_is_refused(
    dataset: CuratedDataset, selector: str, batch_size: int
) -> None:
    """hard_negative served an empty plan and failed with IndexError: issue 17, defect 5."""
    config = JobConfig("news", selector, batch_size=batch_size, last_batch="drop")
    with pytest.raises(ConfigError, match=r"leaves no batch in dataset 'news' of 83 kept rows"):
        Job("j", config, dataset)
    Job("j", JobConfig("news", selector, batch_size=batch_size), dataset)  # partial serves it


def test_advancing_a_cursor_costs_the_ranks_seen_not_the_world_size(
    dataset: CuratedDataset,
) -> None:
    """Job.advance took a minimum over range(world_size) under the job lock, so one ack with
    world_size=2^32-1 pinned a CPU and blocked every checkpoint: issue 17, defect 1."""
    import time

    job = Job("j", JobConfig("news", batch_size=1, world_size=10**7), dataset)
    job.selections[Position(0, 0)] = job.selection(Position(0, 0))  # a cached selection
    started = time.perf_counter()
    for step in range(1, 4):
        job.advance(0, Position(0, step))
    assert time.perf_counter() - started < 0.1
    assert job.cursors == {0: Position(0, 3)}
    assert Position(0, 0) in job.selections  # rank 1 and the others have not passed it


def test_a_selection_goes_once_every_rank_has_passed_it(dataset: CuratedDataset) -> None:
    job = Job("j", JobConfig("news", batch_size=1, world_size=2), dataset)
    job.selections[Position(0, 0)] = job.selection(Position(0, 0))
    job.advance(1, Position(0, 1))
    assert Position(0, 0) in job.selections  # rank 0 has not moved
    job.advance(0, Position(0, 1))
    assert Position(0, 0) not in job.selections


def test_a_column_asked_for_twice_is_refused() -> None:
    """Found by the service fuzz test: ["id", "id"] was served, a schema with two "id"."""
    job = JobConfig("news")
    with pytest.raises(ConfigError, match="columns names column 'id' twice"):
        StreamConfig(columns=("id", "text", "id")).check_against(job, ["id", "text"])
    with pytest.raises(ConfigError, match="score_columns names column 'text' twice"):
        StreamConfig(score_columns=("text", "text")).check_against(job, ["id", "text"])


def test_jobs_of_one_dataset_convert_its_columns_once(
    dataset: CuratedDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each new job converted the dataset's concepts again in its first selection (130 ms for
    40,000 rows): a new job's first batch waited for it."""
    from batchcraft.batcher import pools

    converted: list[str] = []
    convert = pools.column_to_field

    def counting(column: Any, field: str) -> Any:
        converted.append(field)
        return convert(column, field)

    monkeypatch.setattr(pools, "column_to_field", counting)
    fresh = CuratedDataset.open(dataset.root, dataset.name)  # no job has converted its columns
    for seed in (1, 2, 3):
        job = Job(f"concept-{seed}", JobConfig("news", "concept", batch_size=4, seed=seed), fresh)
        job.compute_selection(Position(0, 0))
    assert converted.count("concepts") == 1
