"""Rank streams: reset(state) / next() / state() resume exactly, at every step."""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from loss_selector import TopLossSelector
from stream_resume import assert_resumes_exactly

from batchcraft.batcher.config import JobConfig, Position
from batchcraft.batcher.errors import FeedbackError
from batchcraft.batcher.job import Job
from batchcraft.batcher.selections import RankBatch
from batchcraft.batcher.served_dataset import CuratedDataset
from batchcraft.batcher.stream import RankStream
from batchcraft.errors import ConfigError
from batchcraft.selectors import SELECTORS as REGISTERED

SELECTORS = {
    "uniform": {},
    "coreset": {},
    "concept": {},
    "hard_negative": {"cluster_size": 2},
    "jest": {},  # no feedback: its uniform warm-up
}


@pytest.fixture
def top_loss(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(REGISTERED, TopLossSelector.name, TopLossSelector)


def key(batch: RankBatch) -> Hashable:
    weights = None if batch.weights is None else tuple(np.round(batch.weights, 6).tolist())
    return (batch.position, tuple(batch.positions.tolist()), weights)


@pytest.mark.parametrize("selector", sorted(SELECTORS))
@pytest.mark.parametrize(("world_size", "rank"), [(1, 0), (3, 2)])
def test_every_selector_stream_resumes_exactly_at_every_step(
    dataset: CuratedDataset, selector: str, world_size: int, rank: int
) -> None:
    config = JobConfig(
        "news", selector, SELECTORS[selector], batch_size=5, world_size=world_size, seed=3
    )

    def make() -> RankStream:
        return RankStream(Job("j", config, dataset), rank, num_epochs=2)

    run = assert_resumes_exactly(make, key)
    steps = Job("j", config, dataset).steps_in(0) + Job("j", config, dataset).steps_in(1)
    assert len(run) == steps  # two whole epochs, then the stream ends


@pytest.mark.parametrize("last_batch", ["partial", "drop"])
def test_uniform_streams_of_all_ranks_cover_each_epoch_once(
    dataset: CuratedDataset, last_batch: str
) -> None:
    config = JobConfig("news", batch_size=4, world_size=3, seed=1, last_batch=last_batch)  # type: ignore[arg-type]
    job = Job("j", config, dataset)
    served = [
        row
        for rank in range(3)
        for batch in RankStream(job, rank, num_epochs=1)
        for row in batch.positions
    ]
    assert len(served) == len(set(served))
    if last_batch == "partial":
        assert sorted(served) == list(range(dataset.num_rows))
    else:
        assert len(served) == dataset.num_rows // 12 * 12


def test_an_endless_stream_crosses_epochs_and_a_past_the_end_state_moves_on(
    dataset: CuratedDataset,
) -> None:
    job = Job("j", JobConfig("news", batch_size=40), dataset)  # 83 rows: 3 steps an epoch
    stream = RankStream(job, 0)
    stream.reset({"epoch": 4, "step": 99})
    assert stream.next().position == Position(5, 0)
    positions = [stream.next().position for _ in range(4)]
    assert positions == [Position(5, 1), Position(5, 2), Position(6, 0), Position(6, 1)]
    assert stream.state() == {"epoch": 6, "step": 2}


def test_take_stops_at_the_last_epoch_and_persists_once(dataset: CuratedDataset) -> None:
    persisted: list[Job] = []
    job = Job("j", JobConfig("news", batch_size=40), dataset)
    stream = RankStream(job, 0, num_epochs=1, persist=persisted.append)
    assert [b.position.step for b in stream.take(10)] == [0, 1, 2]
    assert persisted == [job] and stream.exhausted
    with pytest.raises(StopIteration):
        stream.take(1)


@pytest.mark.parametrize(
    "state", [{"epoch": 0}, {"epoch": 0, "step": 1, "x": 2}, {"epoch": "0", "step": 1}, [0, 1]]
)
def test_a_state_of_something_else_is_refused(dataset: CuratedDataset, state: object) -> None:
    stream = RankStream(Job("j", JobConfig("news", batch_size=4), dataset), 0)
    with pytest.raises(ConfigError, match="stream state"):
        stream.reset(state)  # type: ignore[arg-type]


def test_a_rank_outside_the_world_is_refused(dataset: CuratedDataset) -> None:
    with pytest.raises(ConfigError, match=r"rank=2 must be in \[0, 2\)"):
        RankStream(Job("j", JobConfig("news", batch_size=4, world_size=2), dataset), 2)


def test_a_dataset_held_in_memory_streams_like_one_on_disk(tmp_path: Path) -> None:
    table = pa.table({"id": [f"r{i}" for i in range(10)]})
    dataset = CuratedDataset("mem", [tmp_path], [{}], table)
    stream = RankStream(Job("j", JobConfig("mem", batch_size=3, seed=2), dataset), 0, num_epochs=1)
    served = [row for batch in stream for row in batch.positions.tolist()]
    assert sorted(served) == list(range(10))


def test_feedback_for_rows_not_served_is_refused_and_nothing_is_recorded(
    dataset: CuratedDataset,
) -> None:
    stream = RankStream(Job("j", JobConfig("news", batch_size=4), dataset), 0)
    ids = dataset.ids[:2].tolist()
    with pytest.raises(FeedbackError, match=r"not served: \['nope'\]"):
        stream.report([*ids, "nope"], {"learner_losses": np.ones(3)})
    assert stream.job.feedback.num_updates == 0
    positions = stream.report(ids, {"learner_losses": np.array([1.0, 2.0])})
    assert positions.tolist() == [0, 1]
    assert stream.job.feedback.reported("learner_losses", positions).all()


def test_reports_land_on_their_rows_whether_or_not_they_match_a_served_batch(
    dataset: CuratedDataset,
) -> None:
    """A report of a batch as served is matched against the batch; any other report (a
    reordered batch, part of one, one with a row of another batch) goes through the id
    index: the values land on the same rows either way."""
    stream = RankStream(Job("j", JobConfig("news", "jest", batch_size=4), dataset), 0)
    first, second = stream.next(), stream.next()
    ids_of = dict(enumerate(dataset.ids.tolist()))  # position -> id
    served = [ids_of[int(p)] for p in first.positions]
    mixed = [*served[:-1], ids_of[int(second.positions[0])]]  # starts like `first`
    reports = [served, served[::-1], served[1:], mixed]
    for number, ids in enumerate(reports, start=1):
        values = np.arange(len(ids), dtype=np.float32) + 10 * number
        positions = stream.report(ids, {"learner_losses": values})
        assert [ids_of[int(p)] for p in positions] == ids
        np.testing.assert_array_equal(stream.job.feedback.rows["learner_losses"][positions], values)


@pytest.mark.parametrize(
    ("rows", "extra", "message"),
    [
        ({"learner_losses": [1.0, np.nan, 2.0]}, {}, r"'learner_losses' .* row 1 \(id 'r1'\)"),
        ({"learner_losses": [np.inf, 1.0, -np.inf]}, {}, r"row 0 \(id 'r0'\) and 1 more"),
        ({"learner_embeddings": [[1.0, 0.0], [0.0, 1.0], [np.nan, 1.0]]}, {}, "row 2"),
        ({}, {"scalars": {"learner_logit_scale": np.nan}}, "'learner_logit_scale' is NaN"),
        ({}, {"vectors": {"gradient_first_moment": [1.0, np.inf]}}, "'gradient_first_moment'"),
    ],
)
def test_non_finite_feedback_is_refused_and_nothing_is_recorded(
    tmp_path: Path, rows: dict, extra: dict, message: str
) -> None:
    """NaN losses were stored as "not reported", infinities as losses: issue 17, defect 6."""
    table = pa.table({"id": [f"r{i}" for i in range(6)]})
    stream = RankStream(
        Job("j", JobConfig("mem", batch_size=3), CuratedDataset("mem", [tmp_path], [{}], table)), 0
    )
    arrays = {name: np.asarray(value, np.float32) for name, value in rows.items()}
    with pytest.raises(FeedbackError, match=message):
        stream.report(["r0", "r1", "r2"], arrays, **extra)
    assert stream.job.feedback.num_updates == 0


def test_sync_scores_must_be_of_the_round_and_cover_exactly_its_candidates(
    dataset: CuratedDataset, top_loss: None
) -> None:
    config = JobConfig("news", "test_top_loss", batch_size=2, world_size=2, scoring="sync")
    job = Job("j", config, dataset)
    streams = [RankStream(job, rank) for rank in range(2)]
    scoring = streams[0].scoring_round()
    assert scoring is not None and streams[1].scoring_round() is scoring
    mine = dataset.ids[scoring.slice_for(0)].tolist()
    losses = {"learner_losses": np.zeros(len(mine))}
    with pytest.raises(FeedbackError, match="for round 7"):
        streams[0].score(scoring, 7, mine, losses)
    with pytest.raises(FeedbackError, match="must cover exactly"):
        streams[0].score(
            scoring, scoring.round_id, mine[:-1], {"learner_losses": losses["learner_losses"][:-1]}
        )
    for rank, stream in enumerate(streams):
        part = dataset.ids[scoring.slice_for(rank)].tolist()
        stream.score(scoring, scoring.round_id, part, {"learner_losses": np.full(len(part), rank)})
    assert scoring.complete
    chosen = streams[0].next().positions.tolist() + streams[1].next().positions.tolist()
    assert set(chosen) == set(scoring.slice_for(1).tolist())  # rank 1 reported higher losses
    assert streams[0].scoring_round() is not scoring
