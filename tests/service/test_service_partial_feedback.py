"""A trainer through gRPC that reports losses only for the rows it received."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from noisy_labels import NOISE, Learner, noisy_dataset

from batchcraft.batcher.datasets import DatasetRegistry
from batchcraft.service import BatchClient, ServerConfig, create_server

pytestmark = pytest.mark.grpc


@pytest.fixture
def noisy_server(tmp_path: Path):  # type: ignore[no-untyped-def]
    dataset, noisy = noisy_dataset(tmp_path / "noisy")
    server = create_server(DatasetRegistry([dataset]), ServerConfig(fsync=False)).start()
    yield server, dataset, noisy
    server.stop(grace=0)


def test_jest_selects_from_the_second_report_and_avoids_noisy_labels(noisy_server) -> None:  # type: ignore[no-untyped-def]
    server, dataset, noisy = noisy_server
    learner = Learner(noisy)
    position = {identifier: row for row, identifier in enumerate(dataset.ids.tolist())}
    client = BatchClient(
        f"127.0.0.1:{server.port}", "noisy", "jest", 32, columns=["id"], job="t", max_in_flight=2
    )
    served_by, shares, noisy_share = [], [], []
    with client:
        for batch in client:
            rows = np.array([position[i] for i in batch["id"]])
            meta = client.last_meta
            assert meta is not None
            served_by.append(meta.selector)
            if meta.selector == "jest":
                shares.append(meta.info["feedback_scored"])
                noisy_share.append(noisy[rows].mean())
            client.report(batch["id"], losses=learner.train(rows))
    # the server selects up to max_in_flight batches ahead: those precede the first report
    fallbacks = served_by.count("uniform")
    assert served_by[:fallbacks] == ["uniform"] * fallbacks and fallbacks <= 3
    assert set(served_by[fallbacks:]) == {"jest"}
    assert np.mean(noisy_share) < NOISE / 3  # measured: 5.9% against 30%
    assert all(0.0 <= share <= 1.0 for share in shares)
    fallback_metric = server.servicer.metrics.value(
        "batchcraft_feedback_fallback_batches_total", dataset="noisy", selector="jest"
    )
    assert fallback_metric == fallbacks


def test_a_client_that_never_reports_is_warned_once(
    noisy_server, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    server, _, _ = noisy_server
    client = BatchClient(
        f"127.0.0.1:{server.port}",
        "noisy",
        "jest",
        32,
        columns=["id"],
        job="silent",
        max_in_flight=2,
    )
    with caplog.at_level(logging.WARNING, logger="batchcraft.client"), client:
        batches = list(client)
    warnings = [r for r in caplog.records if "uniform batches in a row" in r.getMessage()]
    assert len(batches) > 10 and len(warnings) == 1
    assert "client.report" in warnings[0].getMessage()


def test_the_torch_dataset_reports_feedback_on_the_stream_it_iterates(noisy_server) -> None:  # type: ignore[no-untyped-def]
    from batchcraft.errors import ConfigError
    from batchcraft.service.client.torch import BatchDataset

    server, dataset, noisy = noisy_server
    learner = Learner(noisy)
    position = {identifier: row for row, identifier in enumerate(dataset.ids.tolist())}
    torch_dataset = BatchDataset(
        f"127.0.0.1:{server.port}", "noisy", selector="jest", batch_size=32, columns=["id"],
        job="torch", max_in_flight=2,
    )  # fmt: skip
    with pytest.raises(ConfigError, match="num_workers=0"):
        torch_dataset.report(["r00000"], losses=[1.0])  # nothing iterated yet
    served_by = []
    for batch in torch_dataset:
        rows = np.array([position[i] for i in batch["id"]])
        torch_dataset.report(batch["id"], losses=learner.train(rows))
        served_by.append(torch_dataset._client.last_meta.selector)  # type: ignore[union-attr]
    assert served_by[-1] == "jest" and served_by.count("uniform") <= 3


def test_ahead_scoring_sends_each_round_two_steps_early_and_avoids_noisy_labels(
    noisy_server,
) -> None:  # type: ignore[no-untyped-def]
    """``scoring="ahead"``: the trainer scores the candidates of step s + 2 with the model
    trained on batches 0 .. s - 1, so no step waits for a round trip; every batch is a
    jest selection from scores of all its candidates."""
    server, dataset, noisy = noisy_server
    learner = Learner(noisy)
    position = {identifier: row for row, identifier in enumerate(dataset.ids.tolist())}
    received, scored_at = [0], []

    def scorer(candidates: dict) -> np.ndarray:  # the current model's losses, no training
        scored_at.append(received[0])
        rows = np.array([position[i] for i in candidates["id"]])
        return np.where(noisy[rows], 2.6, 1.5 * 0.5 ** learner.visits[rows]).astype(np.float32)

    client = BatchClient(f"127.0.0.1:{server.port}", "noisy", "jest", 32, columns=["id"],
                         scoring="ahead", scorer=scorer, num_epochs=1, job="ahead")  # fmt: skip
    served_by, noisy_share = [], []
    with client:
        for batch in client:
            received[0] += 1
            rows = np.array([position[i] for i in batch["id"]])
            assert client.last_meta is not None
            served_by.append(client.last_meta.selector)
            noisy_share.append(noisy[rows].mean())
            learner.train(rows)
    assert set(served_by) == {"jest"}  # never the uniform warm-up draw
    assert np.mean(noisy_share) < NOISE / 2  # measured: 10.8% against 30%, as sync scoring
    steps = len(served_by)
    assert len(scored_at) == steps  # one round per step, none past the last epoch
    assert scored_at == [0, 0, 0, *range(1, steps - 2)]  # round s arrives after batch s - 3
