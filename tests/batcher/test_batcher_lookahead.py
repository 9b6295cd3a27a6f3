"""Selections made ahead of demand in worker processes: the same batches, sooner."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from noisy_labels import Learner, noisy_dataset

from batchcraft.batcher.config import JobConfig
from batchcraft.batcher.job import Job
from batchcraft.batcher.lookahead import DatasetSource, Lookahead
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


def batches(job: Job, world_size: int, epochs: int, settle: bool = False) -> list[tuple]:
    """Every rank's batches, ranks interleaved step by step as trainers would ask."""
    streams = [RankStream(job, rank, num_epochs=epochs) for rank in range(world_size)]
    served = []
    while not streams[0].exhausted:
        for stream in streams:
            batch = stream.next()
            weights = None if batch.weights is None else batch.weights.tolist()
            served.append((batch.position, batch.rank, batch.positions.tolist(), weights))
        if settle and job.ahead is not None:
            job.ahead.settle(timeout=60)  # let the worker keep ahead of this fast loop
    return served


@pytest.mark.parametrize(
    ("selector", "params"),
    [("concept", {}), ("coreset", {"pool_multiplier": 4}), ("coreset", {"greedy_epsilon": None})],
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
    assert [(b.position, b.rank, b.positions.tolist(), None) for b in got] == expected
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
