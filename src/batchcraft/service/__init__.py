"""The batch service: gRPC server, `BatchClient` and the torch dataset.

This is the only package that imports grpc. It has three sides:

* `batchcraft.service.wire`: the wire format both ends share.
* `batchcraft.service.client`: `BatchClient` and the torch dataset
  (``batchcraft.service.client.torch``, which imports torch on use).
* `batchcraft.service.server`: the server, its sessions and operations.

The client side imports nothing of the server side, so a trainer that imports
`BatchClient` loads no session, registry, selector, health or reflection
code: the server names here (`BatchServer`, `ServerConfig`, `create_server`)
are imported on first access.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from batchcraft.service.client import BatchClient, BatchMeta, BatchServiceError

if TYPE_CHECKING:
    from batchcraft.service.server import BatchServer, ServerConfig, create_server

_SERVER_NAMES = frozenset({"BatchServer", "ServerConfig", "create_server"})

__all__ = [
    "BatchClient",
    "BatchMeta",
    "BatchServer",
    "BatchServiceError",
    "ServerConfig",
    "create_server",
]


def __getattr__(name: str) -> Any:
    """The server names, imported on first use (PEP 562)."""
    if name in _SERVER_NAMES:
        return getattr(importlib.import_module("batchcraft.service.server"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
