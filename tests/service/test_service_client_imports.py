"""The client side loads nothing of the server side: a trainer imports `BatchClient` only."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SERVER_SIDE = (
    "batchcraft.service.server",
    "batchcraft.service.cli",
    "batchcraft.selectors",
    "batchcraft.batcher.job",
    "batchcraft.batcher.registry",
)
"""Modules (and everything under them) a client must not load."""
SERVER_SIDE_BELOW = ("grpc_health", "grpc_reflection")
"""Packages whose submodules (the health and reflection servicers) a client must not load:
grpc itself imports the bare packages, to alias them as grpc.health and grpc.reflection."""


def modules_after(statement: str) -> list[str]:
    """The modules loaded by ``statement`` in a fresh interpreter."""
    script = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    loaded: list[str] = json.loads(result.stdout)
    return loaded


def server_side(modules: list[str]) -> list[str]:
    return [
        name
        for name in modules
        if any(name == package or name.startswith(f"{package}.") for package in SERVER_SIDE)
        or any(name.startswith(f"{package}.") for package in SERVER_SIDE_BELOW)
    ]


@pytest.mark.parametrize(
    "statement",
    [
        "from batchcraft.service import BatchClient, BatchMeta, BatchServiceError",
        "from batchcraft.service.client import BatchClient",
        "import batchcraft.service.client.batch_client",
    ],
)
def test_importing_the_client_loads_no_server_module(statement: str) -> None:
    modules = modules_after(statement)
    assert "batchcraft.service.client.batch_client" in modules
    assert server_side(modules) == []
    batcher = {name for name in modules if name.startswith("batchcraft.batcher.")}
    assert batcher <= {"batchcraft.batcher.config", "batchcraft.batcher.order"}


def test_the_torch_dataset_loads_no_server_module() -> None:
    pytest.importorskip("torch")
    modules = modules_after("from batchcraft.service.client.torch import BatchDataset")
    assert server_side(modules) == []


def test_the_server_names_are_still_exported_by_the_service_package() -> None:
    modules = modules_after(
        "from batchcraft.service import BatchServer, ServerConfig, create_server"
    )
    assert "batchcraft.service.server.batch_server" in modules
