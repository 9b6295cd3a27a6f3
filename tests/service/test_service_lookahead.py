"""`batchcraft serve` with selection workers: the same batches; no worker outlives it."""

from __future__ import annotations

import time

import psutil
import pytest

from batchcraft.service import BatchClient

pytestmark = pytest.mark.grpc


def served_ids(address: str, selector: str, weights: bool = False) -> list[list]:
    client = BatchClient(
        address, "news", selector, 6, columns=["id"], job=f"ahead-{selector}", seed=4,
        num_epochs=2, selector_params={"pool_multiplier": 3} if selector == "coreset" else {},
    )  # fmt: skip
    with client:
        return [[*batch["id"], *(batch["weight"].tolist() if weights else [])] for batch in client]


@pytest.mark.parametrize("selector", ["coreset", "concept"])
def test_selection_workers_serve_the_batches_of_the_request_path(
    start_server, selector: str
) -> None:  # type: ignore[no-untyped-def]
    on_demand = served_ids(start_server(selection_workers=0), selector, selector == "coreset")
    ahead = served_ids(
        start_server(selection_workers=1, lookahead=4), selector, selector == "coreset"
    )
    assert ahead == on_demand and len(on_demand) >= 8


def test_no_selection_worker_outlives_a_killed_server(server_process, curated_dir) -> None:  # type: ignore[no-untyped-def]
    server = server_process("--name", f"news={curated_dir}", "--selection-workers", "2")
    served_ids(server.address, "concept")
    workers = psutil.Process(server.process.pid).children(recursive=True)
    assert workers  # the concept job started them
    server.kill()
    deadline = time.monotonic() + 15
    while any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers):
        assert time.monotonic() < deadline, "selection workers outlived the server"
        time.sleep(0.1)


def test_a_sigkilled_server_with_selection_workers_resumes_exactly_once(
    server_process, curated_dir, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    args = ("--name", f"news={curated_dir}", "--checkpoint-dir", str(tmp_path / "state"),
            "--checkpoint-interval", "0.1", "--selection-workers", "2", "--lookahead", "4")  # fmt: skip

    def trainer(address: str) -> BatchClient:
        return BatchClient(address, "news", "coreset", 6, columns=["id"], job="killed", seed=4,
                           num_epochs=2, selector_params={"pool_multiplier": 3})  # fmt: skip

    plain = server_process(*args[:2], "--selection-workers", "0")
    uninterrupted = served_ids(plain.address, "coreset")
    server = server_process(*args)
    first = trainer(server.address)
    head = []
    for batch in first:
        head.append(list(batch["id"]))
        saved = first.state_dict()
        if len(head) == 5:
            break
    server.kill()
    first.close()
    resumed = trainer(server_process(*args).address)
    resumed.load_state_dict(saved)
    with resumed:
        tail = [list(batch["id"]) for batch in resumed]
    assert head + tail == uninterrupted
