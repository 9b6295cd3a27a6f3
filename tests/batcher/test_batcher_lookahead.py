"""Selections made ahead of demand in worker processes: the same batches, sooner."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pytest
from noisy_labels import Learner, noisy_dataset

from batchcraft.batcher.config import JobConfig
from batchcraft.batcher.job import Job
from batchcraft.batcher.lookahead import Lookahead
from batchcraft.batcher.lookahead_worker import DatasetSource
from batchcraft.batcher.selections import RankBatch
from batchcraft.batcher.served_dataset import CuratedDataset
from batchcraft.batcher.stream import RankStream
from batchcraft.errors import ConfigError
from batchcraft.synth.curated import write_curated_dataset


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> CuratedDataset:
    root = write_curated_dataset(tmp_path_factory.mktemp("ahead"), num_rows=1200, dim=16)
    return CuratedDataset.open(root, "ahead")


@pytest.fixture(scope="module")
def pool(served: CuratedDataset) -> Iterator[Lookahead]:
    lookahead = Lookahead({"ahead": DatasetSource.of(served)}, workers=1, depth=3)
    yield lookahead
    lookahead.close()


def key(batch: RankBatch) -> tuple:
    """What a rank receives of a batch: its step, rank, rows and weights."""
    weights = None if batch.weights is None else batch.weights.tolist()
    return (batch.position, batch.rank, batch.positions.tolist(), weights)


def batches(job: Job, world_size: int, epochs: int, settle: bool = False) -> list[tuple]:
    """Every rank's batches, ranks interleaved step by step as trainers would ask."""
    streams = [RankStream(job, rank, num_epochs=epochs) for rank in range(world_size)]
    served = []
    while not streams[0].exhausted:
        for stream in streams:
            served.append(key(stream.next()))
        if settle and job.ahead is not None:
            job.ahead.settle(timeout=60)  # let the worker keep ahead of this fast loop
    return served


@pytest.mark.parametrize(
    ("selector", "params"),
    [
        ("concept", {}),
        ("coreset", {"pool_multiplier": 4}),
        ("coreset", {"greedy_epsilon": None}),
        ("hard_negative", {"cluster_size": 8, "initial_cluster_size": 2}),
    ],
)
def test_selections_made_ahead_are_the_ones_made_on_demand(
    served: CuratedDataset, pool: Lookahead, selector: str, params: dict
) -> None:
    config = JobConfig("ahead", selector, params, batch_size=24, world_size=2, seed=7)
    expected = batches(Job("plain", config, served), world_size=2, epochs=2)
    job = Job("ahead", config, served)
    pool.attach(job)
    assert job.ahead is not None
    assert batches(job, world_size=2, epochs=2, settle=True) == expected
    assert job.ahead.made_ahead > len(expected) // 4  # most came from the worker
    assert job.ahead.pending() <= pool.depth and not pool.broken


def test_uniform_and_sync_jobs_select_on_demand(served: CuratedDataset, pool: Lookahead) -> None:
    for config in (
        JobConfig("ahead", "uniform", batch_size=8),
        JobConfig("ahead", "jest", batch_size=8, scoring="sync"),
    ):
        job = Job("j", config, served)
        pool.attach(job)
        assert job.ahead is None


def test_a_feedback_selector_selects_ahead_only_within_its_staleness(tmp_path: Path) -> None:
    dataset, noisy = noisy_dataset(tmp_path / "noisy")
    lookahead = Lookahead({"noisy": DatasetSource.of(dataset)}, workers=1, depth=6, staleness=2)
    try:
        job = Job("j", JobConfig("noisy", "jest", batch_size=32, seed=1), dataset)
        lookahead.attach(job)
        assert job.ahead is not None
        stream = RankStream(job, 0, num_epochs=1)
        first = stream.next()
        assert first.metrics.get("fallback_from") == "jest"
        assert job.ahead.pending() == 0  # no feedback yet: the warm-up draw needs no worker
        learner, kinds, chosen_noisy = Learner(noisy), [], []
        stream.report(
            dataset.ids[first.positions].tolist(),
            {"learner_losses": learner.train(first.positions)},
        )
        for batch in stream:
            assert job.ahead.pending() <= 2
            kinds.append(batch.metrics["selector"])
            chosen_noisy.append(noisy[batch.positions].mean())
            losses = learner.train(batch.positions)
            stream.report(dataset.ids[batch.positions].tolist(), {"learner_losses": losses})
            job.ahead.settle(timeout=60)
        assert set(kinds) == {"jest"} and job.ahead.made_ahead > 0
        assert np.mean(chosen_noisy) < 0.1  # still avoids the noisy 30%, two steps stale
    finally:
        lookahead.close()


def test_a_broken_pool_is_logged_once_and_selection_goes_on(
    served: CuratedDataset, caplog: pytest.LogCaptureFixture
) -> None:
    config = JobConfig("ahead", "concept", batch_size=24, seed=3)
    expected = batches(Job("plain", config, served), world_size=1, epochs=1)
    lookahead = Lookahead({"ahead": DatasetSource.of(served)}, workers=1, depth=3)
    job = Job("j", config, served)
    lookahead.attach(job)
    stream = RankStream(job, 0, num_epochs=1)
    got = [stream.next()]
    assert job.ahead is not None
    job.ahead.settle(timeout=60)
    for process in list(lookahead._executor._processes.values()):  # a worker crash
        process.kill()
    deadline = time.monotonic() + 30
    while not lookahead._executor._broken:  # the executor noticed (its own thread does)
        assert time.monotonic() < deadline
        time.sleep(0.01)
    with caplog.at_level(logging.WARNING, logger="batchcraft.batcher"):
        got += list(stream)
    assert [key(b) for b in got] == expected
    assert lookahead.broken
    events = [r for r in caplog.records if getattr(r.msg, "name", None) == "lookahead_broken"]
    assert len(events) == 1
    lookahead.close()


@pytest.mark.parametrize(
    "settings", [{"workers": 0}, {"workers": 1, "depth": 0}, {"workers": 1, "staleness": -1}]
)
def test_bad_lookahead_settings_are_refused(served: CuratedDataset, settings: dict) -> None:
    with pytest.raises(ConfigError):
        Lookahead({"ahead": DatasetSource.of(served)}, **settings)


def test_with_staleness_zero_a_feedback_selector_gets_the_batches_of_no_lookahead(
    tmp_path: Path,
) -> None:
    dataset, noisy = noisy_dataset(tmp_path / "noisy")

    def run(lookahead: Lookahead | None) -> list[list[int]]:
        job = Job("j", JobConfig("noisy", "jest", batch_size=32, seed=1), dataset)
        if lookahead is not None:
            lookahead.attach(job)
        learner, served = Learner(noisy), []
        for batch in RankStream(job, 0, num_epochs=2):
            served.append(batch.positions.tolist())
            losses = learner.train(batch.positions)
            RankStream(job, 0).report(
                dataset.ids[batch.positions].tolist(), {"learner_losses": losses}
            )
        return served

    lookahead = Lookahead({"noisy": DatasetSource.of(dataset)}, workers=1, depth=4, staleness=0)
    try:
        assert run(lookahead) == run(None)
    finally:
        lookahead.close()


def test_hard_negative_plans_the_next_epochs_in_the_workers(
    served: CuratedDataset, pool: Lookahead
) -> None:
    config = JobConfig("ahead", "hard_negative", {"cluster_size": 8}, batch_size=24, seed=5)
    expected = batches(Job("plain", config, served), world_size=1, epochs=3)
    job = Job("ahead", config, served)
    pool.attach(job)
    assert job.ahead is not None
    stream = RankStream(job, 0, num_epochs=3)
    got = [stream.next()]  # epoch 0 is planned on the request path; epoch 1 is started
    job.ahead.settle(timeout=60)
    planned_ahead = job.ahead.epoch_plan(1)
    assert planned_ahead is not None  # a worker made it
    job.plans[1] = planned_ahead  # as the job's first step of epoch 1 would have taken it
    got += list(stream)
    assert [key(b) for b in got] == expected


def test_selections_made_before_the_first_feedback_are_not_used_after_it(
    tmp_path: Path,
) -> None:
    """hard_negative scores in-batch negatives with the learner's towers once the trainer
    sends them: selections a worker made before must give way, or look-ahead would
    change what a rank receives."""
    root = write_curated_dataset(tmp_path / "pairs", num_rows=600, dim=16, with_pairs=True)
    pairs = CuratedDataset.open(root, "pairs")
    config = JobConfig("pairs", "hard_negative", {"cluster_size": 8}, batch_size=24, seed=9)
    rng = np.random.default_rng(1)
    towers = {
        name: rng.normal(size=(pairs.num_rows, 16)).astype(np.float32)
        for name in ("learner_embeddings", "learner_pair_embeddings")
    }

    def run(lookahead: Lookahead | None) -> list[tuple]:
        job = Job("j", config, pairs)
        if lookahead is not None:
            lookahead.attach(job)
        stream, got = RankStream(job, 0, num_epochs=2), []
        for batch in stream:
            mask = batch.arrays["false_negative_mask"].tolist()
            got.append((batch.positions.tolist(), batch.metrics["top_negative_similarity"], mask))
            if len(got) == 10:  # mid-epoch: the learner's towers for every row
                if job.ahead is not None:
                    job.ahead.settle(timeout=60)  # steps 11.. and epoch 1 made without them
                stream.report(pairs.ids.tolist(), towers)
        return got

    lookahead = Lookahead({"pairs": DatasetSource.of(pairs)}, workers=1, depth=4)
    try:
        assert run(lookahead) == run(None)
    finally:
        lookahead.close()


def test_a_paused_job_frees_the_workers_and_still_serves_its_batches(
    served: CuratedDataset, pool: Lookahead
) -> None:
    config = JobConfig("ahead", "coreset", {"pool_multiplier": 4}, batch_size=24, seed=11)
    expected = batches(Job("plain", config, served), world_size=1, epochs=1)
    job = Job("paused", config, served)
    pool.attach(job)
    assert job.ahead is not None
    stream = RankStream(job, 0, num_epochs=1)
    got = [stream.next()]  # three steps handed to the one worker
    job.ahead.pause()  # the session ended: what the worker has not started is dropped
    # what is left was handed to the executor's call queue (it cannot be cancelled)
    left = [item for item in job.ahead._made.values() if isinstance(item, Future)]
    assert all(item.running() or item.done() for item in left)
    got += list(stream)  # the next session: started again, the same batches
    assert [key(b) for b in got] == expected
