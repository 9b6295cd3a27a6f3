"""The server side: gRPC server, sessions, rank-batch encoding, auth, status codes,
metrics, provenance log and prefetching. Nothing on the client side imports it."""

from batchcraft.service.server.batch_server import BatchServer, create_server
from batchcraft.service.server.config import ServerConfig

__all__ = ["BatchServer", "ServerConfig", "create_server"]
