"""The batch service: gRPC server, `BatchClient` and the torch dataset.

This is the only package that imports grpc. ``batchcraft.service.torch``
imports torch on use.
"""

from batchcraft.service.client import BatchClient, BatchMeta, BatchServiceError
from batchcraft.service.server import BatchServer, ServerConfig, create_server

__all__ = [
    "BatchClient",
    "BatchMeta",
    "BatchServer",
    "BatchServiceError",
    "ServerConfig",
    "create_server",
]
