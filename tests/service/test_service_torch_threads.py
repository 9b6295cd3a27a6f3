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
