"""Resume: client state mid-epoch, and a SIGKILLed server restarted on its checkpoints."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest

from batchcraft.errors import ConfigError
from batchcraft.service import BatchClient

pytestmark = pytest.mark.grpc


def client(address: str, **kwargs: object) -> BatchClient:
    params: dict = {
        "batch_size": 6,
        "seed": 11,
        "columns": ["id"],
        "num_epochs": 2,
        "job": "resume",
        **kwargs,
    }
    return BatchClient(address, "news", **params)


def test_resume_from_state_dict_equals_uninterrupted_run(start_server) -> None:  # type: ignore[no-untyped-def]
    address = start_server()
    with client(address, job="whole") as whole:
        uninterrupted = [list(b["id"]) for b in whole]

    first = client(address)
    head = [list(b["id"]) for b in itertools.islice(first, 23)]  # crosses the epoch boundary
    state = first.state_dict()
    first.close()
    assert state["next"] == [1, 6]  # 101 rows in steps of 6: 17 steps per epoch

    second = client(address)
    second.load_state_dict(state)
    tail = [list(b["id"]) for b in second]
    second.close()
    assert head + tail == uninterrupted


def test_state_from_other_parameters_is_refused(address: str) -> None:
    state = client(address).state_dict()
    with pytest.raises(ConfigError, match="batch_size"):
        client(address, batch_size=7).load_state_dict(state)
    with pytest.raises(ConfigError, match="version"):
        client(address).load_state_dict({**state, "version": 99})
    with pytest.raises(ConfigError, match="the state is of job 'resume'"):
        client(address, job="another").load_state_dict(state)


def test_reconnects_are_budgeted_per_outage_not_per_run(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import grpc

    class Unavailable(grpc.RpcError):
        def code(self) -> grpc.StatusCode:
            return grpc.StatusCode.UNAVAILABLE

        def details(self) -> str:
            return "restarting"

    trainer = BatchClient("127.0.0.1:1", "news", batch_size=4, reconnect_attempts=1)
    outages = iter(range(4))

    def session():  # type: ignore[no-untyped-def]
        # one batch, then the server goes away: four restarts in one run
        trainer._received += 1
        yield {"id": ["a"]}
        if next(outages, None) is not None:
            raise Unavailable()

    monkeypatch.setattr(trainer, "_session", session)
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    assert len(list(trainer)) == 5


def test_a_finished_job_says_why_it_yields_nothing(start_server, caplog) -> None:  # type: ignore[no-untyped-def]
    address = start_server()
    with client(address, job="done", num_epochs=1) as first:
        assert len(list(first)) == 17
    with (
        caplog.at_level("WARNING", logger="batchcraft.client"),
        client(address, job="done", num_epochs=1) as again,
    ):
        assert list(again) == []
    assert "already served its 1 epoch(s)" in caplog.text


def test_sigkill_restart_resume_serves_each_kept_id_once(
    curated_dir: Path, tmp_path: Path, kept_ids: list[str], server_process
) -> None:  # type: ignore[no-untyped-def]
    args = (
        str(curated_dir),
        "--name",
        "news",
        "--checkpoint-dir",
        str(tmp_path / "state"),
        "--checkpoint-interval",
        "0.1",
        "--cache-dir",  # the restarted server maps the rows the first one cached
        str(tmp_path / "cache"),
    )
    server = server_process(*args)
    trainer = client(server.address, num_epochs=1)
    served: list[str] = []
    for batch in itertools.islice(trainer, 7):
        served += list(batch["id"])
        saved = trainer.state_dict()  # what a trainer checkpoints with its model
    server.kill()
    trainer.close()

    restarted = server_process(*args)
    resumed = client(restarted.address, num_epochs=1)
    resumed.load_state_dict(saved)
    served += [i for batch in resumed for i in batch["id"]]
    resumed.close()
    assert len(served) == len(set(served))
    assert sorted(served) == sorted(kept_ids)
    assert (tmp_path / "state" / "jobs").is_dir()
    assert len(list((tmp_path / "cache").glob("news-*.arrow"))) == 1


@pytest.mark.parametrize("stop_after", [1, 5, 9])
def test_a_client_that_stops_early_acknowledges_what_it_received(
    start_server, stop_after: int
) -> None:  # type: ignore[no-untyped-def]
    address = start_server()
    with client(address, job="whole", num_epochs=1) as whole:
        uninterrupted = [list(b["id"]) for b in whole]

    # max_in_flight 8: acks go every 4 batches, so most stops leave batches unacknowledged.
    with client(address, job="early", max_in_flight=8) as first:
        head = []
        for batch in first:
            head.append(list(batch["id"]))
            if len(head) == stop_after:
                break
    # Resumed from the server's cursor alone (no client state): nothing repeated or skipped.
    with client(address, job="early", num_epochs=1) as second:
        tail = [list(b["id"]) for b in second]
    assert head + tail == uninterrupted


def test_closing_a_client_mid_iteration_acknowledges_what_it_received(start_server) -> None:  # type: ignore[no-untyped-def]
    address = start_server()
    with client(address, job="whole", num_epochs=1) as whole:
        uninterrupted = [list(b["id"]) for b in whole]
    first = client(address, job="closed", max_in_flight=8)
    head = [list(b["id"]) for b in itertools.islice(first, 6)]
    first.close()
    with client(address, job="closed", num_epochs=1) as second:
        tail = [list(b["id"]) for b in second]
    assert head + tail == uninterrupted


@pytest.mark.parametrize("leave", ["break", "raise"])
def test_a_script_that_leaves_the_loop_without_closing_exits(start_server, leave: str) -> None:  # type: ignore[no-untyped-def]
    address = start_server()
    script = f"""
from batchcraft.service import BatchClient
client = BatchClient({address!r}, "news", batch_size=6, seed=11, columns=["id"],
                     num_epochs=2, job="script-{leave}", max_in_flight=8)
for index, batch in enumerate(client):
    if index == 2:
        {"break" if leave == "break" else "raise RuntimeError('training step failed')"}
print("script end", flush=True)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == (0 if leave == "break" else 1), result.stderr[-2000:]
    if leave == "break":  # the loop's end acknowledged the three batches received
        with client(address, job="script-break", num_epochs=1) as second:
            next(iter(second))
            assert second.last_meta is not None and second.last_meta.step == 3
