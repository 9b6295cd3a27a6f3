"""The client side: `BatchClient` and, in ``batchcraft.service.client.torch``, the torch
dataset (which imports torch on use).

It imports nothing of the server side (`batchcraft.service.server`), and of the
batcher only `batchcraft.batcher.config` and `batchcraft.batcher.order`: the job
parameters both sides validate identically.
"""

from batchcraft.service.client.batch_client import BatchClient
from batchcraft.service.client.connection import BatchServiceError
from batchcraft.service.client.meta import BatchMeta

__all__ = ["BatchClient", "BatchMeta", "BatchServiceError"]
