"""Feedback over the session: asynchronous loss reports and synchronous scoring rounds."""

from __future__ import annotations

import threading
from typing import Any

import grpc
import numpy as np
import pytest
from loss_selector import TopLossSelector

from batchcraft.selectors import SELECTORS
from batchcraft.service import BatchClient, BatchServiceError

pytestmark = pytest.mark.grpc


@pytest.fixture(autouse=True)
def top_loss(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(SELECTORS, TopLossSelector.name, TopLossSelector)


def loss_of(identifier: str) -> float:
    return float(int(identifier.split("-")[1]))


def sync_loss_trainer(address: str, job: str) -> BatchClient:
    """A sync-scoring trainer of batches of 4 whose model scores a row by its id's loss."""

    def scorer(candidates: dict[str, Any]) -> np.ndarray:
        return np.array([loss_of(i) for i in candidates["id"]])

    return BatchClient(
        address, "news", "test_top_loss", 4, columns=["id"], scoring="sync", scorer=scorer, job=job
    )


def test_async_loss_reports_steer_later_selections(address: str, kept_ids: list[str]) -> None:
    trainer = BatchClient(
        address, "news", "test_top_loss", 4, columns=["id"], max_in_flight=1, seed=2
    )
    selected: list[list[str]] = []
    for batch in trainer:
        selected.append(list(batch["id"]))
        trainer.report(kept_ids, losses=[loss_of(i) for i in kept_ids])
    trainer.close()
    assert trainer.last_meta is not None
    assert trainer.last_meta.selector == "test_top_loss"
    # From the third batch on, the feedback is known: every batch is the top half of its pool.
    later = [loss_of(i) for batch in selected[2:] for i in batch]
    overall = np.mean([loss_of(i) for i in kept_ids])
    assert np.mean(later) > overall * 1.2
    assert len({i for b in selected for i in b}) == sum(len(b) for b in selected)


@pytest.mark.parametrize("scoring", ["sync", "ahead"])
def test_sync_round_with_a_torch_model_scorer(address: str, scoring: str) -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 1)
    rounds: dict[int, list[dict[str, float]]] = {0: [], 1: []}
    served: dict[int, list[list[str]]] = {0: [], 1: []}

    def scorer_for(rank: int) -> Any:
        def scorer(candidates: dict[str, Any]) -> np.ndarray:
            with torch.no_grad():
                scores = model(torch.tensor(candidates["embedding"])).squeeze(1).numpy()
            rounds[rank].append(dict(zip(candidates["id"], scores.tolist(), strict=True)))
            return scores

        return scorer

    def run(rank: int) -> None:
        trainer = BatchClient(
            address,
            "news",
            "test_top_loss",
            3,
            rank=rank,
            world_size=2,
            columns=["id"],
            scoring=scoring,
            scorer=scorer_for(rank),
            score_columns=["embedding"],
            job=f"two-ranks-{scoring}",
        )
        with trainer:
            served[rank] = [list(batch["id"]) for batch in trainer]

    threads = [threading.Thread(target=run, args=(rank,)) for rank in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert len(served[0]) == len(served[1]) == len(rounds[0]) == len(rounds[1]) > 0
    for step, (part0, part1) in enumerate(zip(served[0], served[1], strict=True)):
        assert not set(rounds[0][step]) & set(rounds[1][step])  # each rank scores its own share
        pool = {**rounds[0][step], **rounds[1][step]}
        selected = set(part0) | set(part1)
        best = sorted(pool, key=lambda i: -pool[i])[: len(selected)]
        assert selected == set(best)  # the current model's scores decided the batch


def test_a_sync_trainer_that_stops_early_resumes_where_it_stopped(address: str) -> None:
    def trainer() -> BatchClient:
        return sync_loss_trainer(address, "sync-early")

    with trainer() as first:
        head = []
        for batch in first:
            head.append(list(batch["id"]))
            if len(head) == 3:
                break  # no error, and the server's cursor moves past what was received
    with trainer() as second:
        following = next(iter(second))
        assert second.last_meta is not None
        assert (second.last_meta.epoch, second.last_meta.step) == (0, 3)
    assert not set(following) & {i for b in head for i in b}


def test_bad_feedback_in_a_sync_session_is_an_error_not_an_end(address: str) -> None:
    trainer = sync_loss_trainer(address, "sync-bad-feedback")
    with trainer, pytest.raises(BatchServiceError) as raised:
        for index, _ in enumerate(trainer):
            if index == 1:
                trainer.report(["no-such-id"], losses=[1.0])
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "no-such-id" in str(raised.value)


@pytest.mark.parametrize("moment_first", [False, True])
def test_moments_that_do_not_fit_the_sketches_are_refused(address: str, moment_first: bool) -> None:
    # Accepted, such a moment would make every later coreset selection of the job fail.
    trainer = BatchClient(address, "news", "coreset", 4, columns=["id"], job=f"m-{moment_first}")
    with trainer, pytest.raises(BatchServiceError, match="first_moment has 3 values") as raised:
        for index, batch in enumerate(trainer):
            ids = list(batch["id"])
            sketches = np.ones((len(ids), 4))
            if index == 0 and moment_first:
                trainer.report(ids, gradient_first_moment=np.zeros(3))
            elif index == 0:
                trainer.report(ids, gradient_sketches=sketches, gradient_first_moment=np.zeros(3))
            elif index == 1 and moment_first:
                trainer.report(ids, gradient_sketches=sketches)
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
