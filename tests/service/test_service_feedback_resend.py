"""Feedback a trainer reported on a session whose replica was SIGKILLed reaches the job:
the client keeps its reports until the server says the job's checkpoint holds them, resends
them on the next session, and the server applies each numbered report once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_service_leases import LEASE_SECONDS, loss_of, saved_losses

from batchcraft.api.v1 import batch_service_pb2 as pb
from batchcraft.batcher.checkpoint_store import CheckpointStore
from batchcraft.batcher.feedback import FeedbackTable
from batchcraft.batcher.feedback_sequences import Numbered
from batchcraft.batcher.leases import latest_lease
from batchcraft.batcher.served_dataset import CuratedDataset
from batchcraft.service import BatchClient
from batchcraft.service.client.feedback_log import FeedbackLog
from batchcraft.service.client.stream import Requests

pytestmark = pytest.mark.grpc
KILL_AFTER = 6


def test_feedback_reported_before_a_sigkill_reaches_the_survivor_unsaved_by_the_dead(
    curated_dir: Path, tmp_path: Path, server_process
) -> None:  # type: ignore[no-untyped-def]
    store = CheckpointStore.at(tmp_path / "state")
    # checkpoints every minute: the owner dies with every report of the run unsaved
    args = (str(curated_dir), "--name", "news", "--checkpoint-dir", store.url,
            "--checkpoint-interval", "60", "--selection-workers", "0",
            "--lease-seconds", str(LEASE_SECONDS))  # fmt: skip
    servers = [server_process(*args), server_process(*args)]
    trainer = BatchClient(
        f"ipv4:{servers[0].address},{servers[1].address}",
        "news",
        "uniform",
        4,
        columns=["id"],
        job="resend",
        num_epochs=1,
        reconnect_attempts=20,
    )
    reported: list[str] = []
    for batch in trainer:
        ids = list(batch["id"])
        trainer.report(ids, losses=loss_of(ids))
        reported += ids
        if len(reported) == 4 * KILL_AFTER:
            owner = latest_lease(store.job("resend"))
            assert owner is not None
            (dead,) = [server for server in servers if server.address == owner.address]
            assert np.isnan(saved_losses(store, "resend", _dataset(curated_dir), ids)).all()
            dead.kill()
    trainer.close()
    (survivor,) = [server for server in servers if server.process.poll() is None]
    survivor.stop()  # saves the job
    losses = saved_losses(store, "resend", _dataset(curated_dir), reported)
    assert np.array_equal(losses, loss_of(reported))  # every report, none lost


@pytest.mark.parametrize("checkpointed", [True, False])
def test_the_client_forgets_the_reports_the_server_saved(
    start_server, tmp_path: Path, checkpointed: bool
) -> None:  # type: ignore[no-untyped-def]
    settings = {"checkpoint_dir": tmp_path, "checkpoint_interval": 60.0} if checkpointed else {}
    trainer = BatchClient(start_server(**settings), "news", "uniform", 2, columns=["id"], job="kept")  # fmt: skip
    for index, batch in enumerate(trainer):
        trainer.report(list(batch["id"]), losses=loss_of(list(batch["id"])))
        if index == 9:
            break  # the session ends: the server saves the job, with the ten reports
    if checkpointed:  # nothing was saved during the session (without: forgotten once applied)
        assert len(trainer._feedback) == 10
    next(iter(trainer))  # a new session: the server says its checkpoint holds all ten
    assert len(trainer._feedback) == 0
    trainer.close()


def _dataset(curated_dir: Path) -> CuratedDataset:
    return CuratedDataset.open(curated_dir, "news")


def test_a_numbered_report_is_applied_once_and_its_number_is_saved_with_the_table() -> None:
    table = FeedbackTable(10)
    first = Numbered(0, "client-a", 1)
    assert table.update(np.arange(3), {"learner_losses": np.ones(3, np.float32)}, numbered=first)
    newer = Numbered(0, "client-a", 2)
    assert table.update(
        np.arange(2), {"learner_losses": np.full(2, 5.0, np.float32)}, numbered=newer
    )
    # resent after a failover: the older report must not overwrite the newer losses
    assert not table.update(
        np.arange(3), {"learner_losses": np.ones(3, np.float32)}, numbered=first
    )
    assert table.rows["learner_losses"][:3].tolist() == [5.0, 5.0, 1.0] and table.num_updates == 2
    restored = FeedbackTable.from_arrays(10, table.to_arrays())
    assert restored.confirmed(0, "client-a", saved=True) == 2
    assert not restored.update(
        np.arange(1), {"learner_losses": np.zeros(1, np.float32)}, numbered=newer
    )
    # a new client of the rank (a restarted trainer) numbers afresh
    assert restored.update(
        np.arange(1),
        {"learner_losses": np.zeros(1, np.float32)},
        numbered=Numbered(0, "client-b", 1),
    )
    assert restored.confirmed(0, "client-a", saved=False) == 0


def test_kept_reports_go_first_on_a_new_session_and_an_older_server_gets_none_kept() -> None:
    log = FeedbackLog()
    for _ in range(3):
        log.report(pb.SessionRequest(feedback=pb.Feedback()))
    log.saved(1)
    requests = Requests([pb.SessionRequest(open=pb.OpenSession())])
    log.attach(requests)
    log.report(pb.SessionRequest(feedback=pb.Feedback()))
    requests.end()
    sent = [message.feedback.sequence for message in list(requests)[1:]]
    assert sent == [2, 3, 4]  # in order: the server applies numbers above its latest only
    log.opened(numbered=False)  # a server that never confirms: keeping would only grow
    log.report(pb.SessionRequest(feedback=pb.Feedback()))
    assert len(log) == 0
