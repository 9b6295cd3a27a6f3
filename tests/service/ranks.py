"""Trainers of several ranks run at once, each on a thread of its own, and what each received
(the failover tests)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from batchcraft.service import BatchClient

Received = tuple[int, int, list[str], dict[str, Any], bool]


def run_ranks(train: Callable[[int], None], trainers: Sequence[BatchClient]) -> None:
    """Run ``train(rank)`` for every rank of ``trainers`` at once, wait for all (two minutes
    at most), then close the trainers."""
    threads = [threading.Thread(target=train, args=(rank,)) for rank in range(len(trainers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for trainer in trainers:
        trainer.close()


def received(trainer: BatchClient, batch: dict[str, Any], after: bool) -> Received:
    """(epoch, step, ids, selector info, ``after``) of the batch ``trainer`` just yielded."""
    meta = trainer.last_meta
    assert meta is not None
    return meta.epoch, meta.step, list(batch["id"]), meta.info, after
