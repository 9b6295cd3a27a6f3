"""`batchcraft serve --torch-threads`: selector math runs on the threads it is given."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("threads", [1, 2])
def test_torch_imported_after_the_limit_uses_that_many_threads(threads: int) -> None:
    script = (
        "from batchcraft.service.cli import limit_torch_threads\n"
        f"limit_torch_threads({threads})\n"
        "import torch\n"
        "print(torch.get_num_threads())\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert int(found.stdout.strip()) == threads


def _maps_torch(pid: int) -> bool:
    return "libtorch" in open(f"/proc/{pid}/maps").read()


@pytest.mark.grpc
def test_a_server_imports_torch_at_start_unless_told_not_to(server_process, curated_dir) -> None:  # type: ignore[no-untyped-def]
    """``--no-torch-warm-up`` keeps torch (about 120 MiB) out of a server of uniform
    batches; by default it is imported at start, in the background."""
    import os
    import time

    from batchcraft.service import BatchClient

    if not os.path.exists("/proc/self/maps"):
        pytest.skip("no /proc here to see the process's mappings")
    plain = server_process(str(curated_dir), "--name", "news", "--no-torch-warm-up")
    with BatchClient(plain.address, "news", batch_size=16, columns=["id"]) as client:
        assert sum(len(batch["id"]) for batch in client) > 0  # an epoch of uniform batches
    assert not _maps_torch(plain.process.pid)
    warmed = server_process(str(curated_dir), "--name", "news")
    deadline = time.monotonic() + 60
    while not _maps_torch(warmed.process.pid):
        assert time.monotonic() < deadline, "torch was not imported at start"
        time.sleep(0.2)
