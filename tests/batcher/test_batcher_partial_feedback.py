"""Feedback selectors on the feedback a real trainer sends: only the rows it trained on."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from noisy_labels import Learner, noisy_dataset

from batchcraft.batcher.config import JobConfig
from batchcraft.batcher.estimates import PRIOR_REPORTS, FeedbackEstimator
from batchcraft.batcher.feedback import FeedbackTable
from batchcraft.batcher.job import Job
from batchcraft.batcher.served_dataset import CuratedDataset
from batchcraft.batcher.stream import RankStream
from batchcraft.dataset import layout
from batchcraft.dataset.arrays import to_fixed_size_list
from batchcraft.dataset.manifest import write_manifest
from batchcraft.dataset.schema import SCHEMA_VERSION
from batchcraft.errors import ConfigError

DIM = 16


@pytest.mark.parametrize("selector", ["jest", "jest_independent"])
def test_a_trainer_reporting_only_its_rows_gets_selections_that_avoid_noisy_labels(
    tmp_path: Path, selector: str
) -> None:
    dataset, noisy = noisy_dataset(tmp_path / "noisy")
    job = Job("j", JobConfig("noisy", selector, batch_size=32, seed=1), dataset)
    stream = RankStream(job, 0, num_epochs=1)
    learner = Learner(noisy)
    kinds, chosen_noisy, shares = [], [], []
    for batch in stream:
        kinds.append(batch.metrics["selector"])
        if kinds[-1] == selector:
            chosen_noisy.append(noisy[batch.positions].mean())
            shares.append(batch.metrics["feedback_scored"])
        losses = learner.train(batch.positions)  # reported after training, its rows only
        stream.report(dataset.ids[batch.positions].tolist(), {"learner_losses": losses})
    assert kinds[0] == "uniform" and set(kinds[1:]) == {selector}  # from the 2nd batch on
    # 30% of the rows are noisy; measured: jest serves 5.2% of them, jest_independent 0%
    assert np.mean(chosen_noisy) < {"jest": 0.1, "jest_independent": 0.02}[selector]
    assert shares[0] < 0.05 and all(0.0 <= share < 1.0 for share in shares)


def test_unreported_losses_take_their_clusters_shrunk_mean() -> None:
    clusters = np.array([0, 0, 0, 1, 1, 2])
    table = np.array([1.0, 3.0, np.nan, 10.0, np.nan, np.nan], np.float32)
    reported = ~np.isnan(table)
    estimator = FeedbackEstimator(lambda field: None, clusters)
    filled = estimator.fill("learner_losses", table, reported, np.arange(6), update=1)
    assert filled is not None
    overall = (1 + 3 + 10) / 3
    np.testing.assert_allclose(filled[[0, 1, 3]], [1, 3, 10])  # reports win
    shrunk = [
        (4 + PRIOR_REPORTS * overall) / (2 + PRIOR_REPORTS),
        (10 + PRIOR_REPORTS * overall) / (1 + PRIOR_REPORTS),
        overall,
    ]
    np.testing.assert_allclose(filled[[2, 4, 5]], shrunk, rtol=1e-5)
    assert (
        estimator.fill("learner_losses", table * np.nan, ~reported & False, np.arange(6), 2) is None
    )


def test_unreported_learner_embeddings_are_predicted_from_curated_ones() -> None:
    rng = np.random.default_rng(0)
    curated = rng.normal(size=(600, 12)).astype(np.float32)
    learner = (curated @ rng.normal(size=(12, 6)) + 0.5).astype(np.float32)
    table = np.full_like(learner, np.nan)
    scored = rng.random(600) < 0.3
    table[scored] = learner[scored]
    estimator = FeedbackEstimator(lambda field: curated if field == "embeddings" else None, None)
    assert estimator.method("learner_embeddings") == "ridge"
    filled = estimator.fill("learner_embeddings", table, scored, np.arange(600), update=1)
    assert filled is not None
    np.testing.assert_array_equal(filled[scored], learner[scored])
    error = np.linalg.norm(filled[~scored] - learner[~scored]) / np.linalg.norm(learner[~scored])
    assert error < 0.05  # measured 1.3% (the ridge penalty's bias)


def test_pool_feedback_tells_the_scored_share_and_the_estimate() -> None:
    estimator = FeedbackEstimator(lambda field: None, None)
    table = FeedbackTable(10, estimator)
    table.update(np.array([0, 1, 2]), {"learner_losses": np.array([1.0, 2.0, 3.0])})
    pooled = table.pool_fields(np.arange(6), frozenset({"learner_losses", "learner_logit_bias"}))
    assert pooled.scored_share == 0.5 and pooled.estimates == {"learner_losses": "global_mean"}
    np.testing.assert_allclose(pooled.fields["learner_losses"], [1, 2, 3, 2, 2, 2])
    full = table.pool_fields(np.arange(3), frozenset({"learner_losses"}))
    assert full.scored_share == 1.0 and full.estimates == {}


def test_the_fallback_is_counted_logged_once_and_marked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dataset, _ = noisy_dataset(tmp_path / "noisy")
    job = Job("j", JobConfig("noisy", "jest", batch_size=32), dataset)
    stream = RankStream(job, 0)
    with caplog.at_level(logging.WARNING, logger="batchcraft.batcher"):
        batches = [stream.next() for _ in range(3)]
    assert [b.metrics.get("fallback_from") for b in batches] == ["jest"] * 3
    assert job.fallbacks == 3
    events = [r for r in caplog.records if getattr(r, "event", None) == "feedback_fallback"]
    assert len(events) == 1 and events[0].job == "j"  # type: ignore[attr-defined]


def test_async_pairwise_jest_selects_from_partly_scored_pools(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    images = rng.normal(size=(500, DIM)).astype(np.float32)
    texts = (images + 0.2 * rng.normal(size=images.shape)).astype(np.float32)
    table = pa.table(
        {
            "id": [f"p{i}" for i in range(500)],
            "embedding": to_fixed_size_list(images),
            "pair_embedding": to_fixed_size_list(texts),
        }
    )
    root = tmp_path / "pairs"
    layout.data_dir(root).mkdir(parents=True)
    pq.write_table(table, root / layout.shard_name(0))
    write_manifest(root, {"schema_version": SCHEMA_VERSION})
    dataset = CuratedDataset.open(root, "pairs")
    towers = rng.normal(size=(DIM, 8)), rng.normal(size=(DIM, 8))  # the learner's
    job = Job("j", JobConfig("pairs", "jest", batch_size=16, seed=3), dataset)
    stream = RankStream(job, 0, num_epochs=2)
    infos = []
    for batch in stream:
        infos.append(batch.metrics)
        rows = batch.positions
        stream.report(
            dataset.ids[rows].tolist(),
            {
                "learner_embeddings": images[rows] @ towers[0],
                "learner_pair_embeddings": texts[rows] @ towers[1],
            },
        )
    assert infos[0]["selector"] == "uniform"
    assert {(i["selector"], i["scoring"]) for i in infos[1:]} == {("jest", "pairwise")}
    assert infos[1]["estimate_learner_embeddings"] == "ridge"
    # each row is a candidate once an epoch: no candidate of epoch 0 was reported before
    steps = job.steps_in(0)
    assert {i["feedback_scored"] for i in infos[1:steps]} == {0.0}
    assert 0 < infos[-1]["feedback_scored"] < 1


def test_a_selector_the_dataset_can_never_satisfy_is_refused_up_front(tmp_path: Path) -> None:
    # no ref_loss and no pair embeddings: no feedback can ever make jest select
    vectors = np.eye(4, DIM, dtype=np.float32)
    table = pa.table({"id": list("abcd"), "embedding": to_fixed_size_list(vectors)})
    dataset = CuratedDataset("plain", [tmp_path], [{}], table)
    with pytest.raises(ConfigError, match=r"'jest' needs dataset columns \['pair_embedding'"):
        Job("j", JobConfig("plain", "jest", batch_size=2), dataset)
    Job("j", JobConfig("plain", "coreset", batch_size=2), dataset)  # embeddings suffice


def test_cluster_sums_kept_per_report_equal_a_recount() -> None:
    rng = np.random.default_rng(4)
    clusters = rng.integers(0, 7, 300)
    running = FeedbackTable(300, FeedbackEstimator(lambda field: None, clusters))
    everything = np.arange(300)
    for step in range(40):  # reports overwrite rows, some with NaN (a row unreported again)
        rows = rng.choice(300, 25, replace=False)
        losses = rng.random(25)
        losses[rng.random(25) < 0.1] = np.nan
        running.update(rows, {"learner_losses": losses})
        if step == 0:  # the sums exist from the first selection on, then follow the reports
            running.pool_fields(everything, frozenset({"learner_losses"}))
    recount = FeedbackTable.from_arrays(
        300, running.to_arrays(), FeedbackEstimator(lambda field: None, clusters)
    )
    wanted = frozenset({"learner_losses"})
    np.testing.assert_allclose(
        running.pool_fields(everything, wanted).fields["learner_losses"],
        recount.pool_fields(everything, wanted).fields["learner_losses"],
        rtol=1e-5,
    )
