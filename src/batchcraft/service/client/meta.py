"""`BatchMeta`: where a received batch comes from, decoded from its header on demand."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from batchcraft.api.v1 import batch_service_pb2 as pb
from batchcraft.service.wire.header import read_info, read_info_arrays


@dataclass(frozen=True)
class BatchMeta:
    """Where a batch comes from: ids, position and the selector's info."""

    batch_id: str
    epoch: int
    step: int
    rank: int
    selector: str
    info: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def of(cls, header: pb.Batch) -> BatchMeta:
        """The metadata of the batch whose header is ``header``."""
        return cls(
            header.batch_id,
            header.position.epoch,
            header.position.step,
            header.rank,
            header.selector,
            read_info(header),
            read_info_arrays(header),
        )
