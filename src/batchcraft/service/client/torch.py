"""`BatchDataset`: a torch ``IterableDataset`` over a batchcraft server.

Use with ``DataLoader(dataset, batch_size=None, num_workers=n)``: batches are
already formed by the server. Each DataLoader worker opens its own gRPC
channel after the fork and acts as its own rank of the job: trainer rank
``r`` with ``w`` workers becomes ranks ``r * w .. r * w + w - 1`` of
``world_size * w``. Workers therefore receive disjoint batches, the same
number each, and the whole epoch is served once across them.

Every yielded batch is a dict of tensors (numeric columns), lists (strings),
``"weight"`` when the selector weights rows, ``"position"`` — an int64
tensor ``[epoch, step, stream_rank, num_streams]`` identifying the batch — and
``"info_arrays"``, a dict of tensors, when the selector sends per-row arrays
(``hard_negative``'s ``false_negative_mask``).

Feedback: without DataLoader workers, ``dataset.report(batch["id"], losses=...)``
sends it on the stream that served the batch (see `BatchClient.report`). A
worker's stream lives in the worker process, out of the training loop's
reach: with workers, report through a `BatchClient` of the trainer's own.

On a GPU: ``DataLoader(..., pin_memory=True)`` (or ``BatchDataset(...,
pin_memory=True)`` without workers) puts batches in page-locked memory, and
`to_device` then copies them with ``non_blocking=True``, overlapping the copy
with the host's work on the next batch.

Checkpointing: ``state_dict()`` returns the next position of every stream
whose batches were passed to `BatchDataset.mark_consumed` (with
``num_workers=0`` this happens automatically). With workers, call
``dataset.mark_consumed(batch)`` in the training loop for each batch used;
``load_state_dict`` makes each worker resume where its stream stopped; the
state records the job and the number of streams, and resuming with another
number of workers or another job is an error (its streams would be other
parts of each batch).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from batchcraft._deps import require
from batchcraft.errors import ConfigError
from batchcraft.service.client import BatchClient
from batchcraft.service.client.state import STATE_VERSION, check_state

require("torch")  # raises MissingDependencyError naming the package
import torch  # noqa: E402
from torch.utils.data import IterableDataset, get_worker_info  # noqa: E402

_FORMAT = "batchcraft.BatchDataset"


class BatchDataset(IterableDataset):  # type: ignore[type-arg]
    """Streams a job's batches as tensors; see the module docstring.

    Args:
        target: ``host:port`` of the server.
        dataset: registered dataset name.
        rank: the trainer's rank; ``world_size`` trainer ranks share the job.
        pin_memory: without DataLoader workers, put every tensor in page-locked
            memory (when CUDA is available) for asynchronous `to_device` copies.
            With workers, pass ``pin_memory=True`` to the DataLoader instead:
            tensors cross from the workers through shared memory, unpinned.
        **client_kwargs: everything else `BatchClient` takes (selector,
            batch_size, seed, columns, token, num_epochs, job ...).
    """

    def __init__(
        self,
        target: str,
        dataset: str,
        *,
        rank: int = 0,
        world_size: int = 1,
        pin_memory: bool = False,
        **client_kwargs: Any,
    ):
        super().__init__()
        self.pin_memory = pin_memory
        self.target = target
        self.dataset = dataset
        self.rank = rank
        self.world_size = world_size
        self.client_kwargs = client_kwargs
        self._positions: dict[int, list[int]] = {}
        self._resume: dict[int, list[int]] = {}
        self._streams: int | None = None  # streams of the consumed batches (state_dict)
        self._resume_streams: int | None = None
        self._client: BatchClient | None = None  # the iterating client, without workers

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        workers, worker = (info.num_workers, info.id) if info is not None else (1, 0)
        stream_rank = self.rank * workers + worker
        streams = self.world_size * workers
        if self._resume and self._resume_streams not in (None, streams):
            raise ConfigError(
                f"the state was saved with {self._resume_streams} streams (world_size x "
                f"num_workers), this DataLoader has {streams}: resume with the same number "
                "of workers, or start a new job"
            )
        client = BatchClient(
            self.target,
            self.dataset,
            rank=stream_rank,
            world_size=self.world_size * workers,
            **self.client_kwargs,
        )
        if stream_rank in self._resume:
            state = client.state_dict()
            state["next"] = self._resume[stream_rank]
            client.load_state_dict(state)
        # A worker's yielded batches wait in the DataLoader's prefetch queue: received
        # is not consumed, so closing must not acknowledge them to the server.
        client.acknowledge_on_close = info is None
        self._client = client if info is None else None
        try:
            with client:
                for batch in client:
                    yield self._tensors(batch, client, stream_rank, streams, info is None)
        finally:
            self._client = None

    def _tensors(
        self, batch: dict[str, Any], client: BatchClient, stream_rank: int, streams: int, main: bool
    ) -> dict[str, Any]:
        """The batch as tensors, with its position (and info arrays, if any)."""
        meta = client.last_meta
        assert meta is not None
        tensors = to_tensors(batch, self.pin_memory and main)
        tensors["position"] = torch.tensor(
            [meta.epoch, meta.step, stream_rank, streams], dtype=torch.int64
        )
        if meta.arrays:
            tensors["info_arrays"] = to_tensors(dict(meta.arrays), self.pin_memory and main)
        if main:
            self.mark_consumed(tensors, client.state_dict()["next"])
        return tensors

    def report(self, ids: Any, losses: Any = None, **feedback: Any) -> None:
        """Send feedback on rows of the batches being iterated (see `BatchClient.report`).

        Raises:
            ConfigError: nothing is being iterated in this process (not yet, or the
                batches come from DataLoader workers, whose streams live in them).
        """
        if self._client is None:
            raise ConfigError(
                "BatchDataset.report needs the iteration in this process (num_workers=0); "
                "with DataLoader workers, report through a BatchClient of your own"
            )
        self._client.report(ids, losses, **feedback)

    def mark_consumed(self, batch: dict[str, Any], next_position: list[int] | None = None) -> None:
        """Record that ``batch`` was used (its stream resumes after it)."""
        epoch, step, stream_rank, streams = (int(v) for v in batch["position"].tolist())
        self._positions[stream_rank] = next_position or [epoch, step + 1]
        self._streams = streams

    def state_dict(self) -> dict[str, Any]:
        """Per-stream resume positions (JSON-serialisable)."""
        return {
            "format": _FORMAT,
            "version": STATE_VERSION,
            "job": self.client_kwargs.get("job"),
            "streams": self._streams,
            "next": dict(self._positions),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume every stream from ``state`` on the next iteration.

        Raises:
            ConfigError: not a `BatchDataset` state of this version, or of another job.
        """
        check_state(state, _FORMAT, self.client_kwargs.get("job"))
        self._resume = {int(rank): list(position) for rank, position in state["next"].items()}
        self._positions = dict(self._resume)
        self._resume_streams = self._streams = state.get("streams")


def to_tensors(batch: dict[str, Any], pin_memory: bool = False) -> dict[str, Any]:
    """numpy arrays become tensors; other values (lists of strings) stay.

    Each array is copied once (the received message is read-only): into page-locked
    memory with ``pin_memory`` when CUDA is available, so that `to_device` can copy
    it to the GPU asynchronously, else into ordinary memory.
    """
    pinned = pin_memory and torch.cuda.is_available()
    return {
        name: _tensor(value, pinned) if isinstance(value, np.ndarray) else value
        for name, value in batch.items()
    }


def to_device(batch: dict[str, Any], device: Any, non_blocking: bool = True) -> dict[str, Any]:
    """Every tensor of ``batch`` on ``device``; other values stay.

    With ``non_blocking`` (the default), copies from pinned memory to a GPU are
    asynchronous: the host can prepare the next batch while they run.

    Example:
        >>> batch = to_device(to_tensors({"x": np.ones(2, np.float32), "t": ["a"]}), "cpu")
        >>> batch["x"].device.type, batch["t"]
        ('cpu', ['a'])
    """
    return {
        name: value.to(device, non_blocking=non_blocking)
        if isinstance(value, torch.Tensor)
        else value
        for name, value in batch.items()
    }


def _tensor(array: np.ndarray, pinned: bool) -> Any:
    if not pinned:
        return torch.from_numpy(np.array(array))
    dtype = torch.from_numpy(np.empty(0, array.dtype)).dtype
    tensor = torch.empty(array.shape, dtype=dtype, pin_memory=True)
    tensor.numpy()[...] = array
    return tensor
