"""The torch IterableDataset inside a DataLoader, with worker processes."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.grpc
torch = pytest.importorskip("torch")

from batchcraft.service.client.torch import BatchDataset  # noqa: E402


def test_dataloader_with_two_workers_yields_the_epoch_once(
    curated_dir: Path, kept_ids: list[str], server_process
) -> None:  # type: ignore[no-untyped-def]
    server = server_process(str(curated_dir), "--name", "news")
    dataset = BatchDataset(
        server.address, "news", batch_size=8, columns=["id", "embedding"], seed=4
    )
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=2, timeout=60)
    batches = list(loader)
    served = [i for batch in batches for i in batch["id"]]
    assert sorted(served) == sorted(kept_ids)
    assert all(
        isinstance(b["embedding"], torch.Tensor) and b["embedding"].shape[1] == 8 for b in batches
    )
    streams = [int(b["position"][2]) for b in batches]
    assert streams.count(0) == streams.count(1)


def test_state_dict_resumes_in_process(address: str, kept_ids: list[str]) -> None:
    kwargs = {"batch_size": 8, "columns": ["id"], "seed": 9, "job": "torch-resume"}
    dataset = BatchDataset(address, "news", **kwargs)
    iterator = iter(dataset)
    head = [i for _ in range(5) for i in next(iterator)["id"]]
    state = dataset.state_dict()
    del iterator
    resumed = BatchDataset(address, "news", **kwargs)
    resumed.load_state_dict(state)
    tail = [i for batch in resumed for i in batch["id"]]
    assert sorted(head + tail) == sorted(kept_ids)


def test_a_state_resumes_only_the_same_job_and_streams(address: str) -> None:
    from batchcraft.errors import ConfigError
    from batchcraft.service import BatchClient

    kwargs = {"batch_size": 8, "columns": ["id"], "seed": 9, "job": "torch-streams"}
    dataset = BatchDataset(address, "news", world_size=2, **kwargs)
    iterator = iter(dataset)
    dataset.mark_consumed(next(iterator))
    state = dataset.state_dict()
    assert state["streams"] == 2 and state["job"] == "torch-streams"
    del iterator
    wider = BatchDataset(address, "news", world_size=3, **kwargs)
    wider.load_state_dict(state)
    with pytest.raises(ConfigError, match="saved with 2 streams"):
        next(iter(wider))
    with pytest.raises(ConfigError, match="the state is of job 'torch-streams'"):
        BatchDataset(address, "news", **{**kwargs, "job": "other"}).load_state_dict(state)
    client_state = BatchClient(address, "news", batch_size=8).state_dict()
    with pytest.raises(ConfigError, match=r"not a batchcraft\.BatchDataset state"):
        BatchDataset(address, "news", **kwargs).load_state_dict(client_state)


@pytest.mark.filterwarnings("ignore:.*pin_memory.*:UserWarning")  # no accelerator here
def test_batches_for_a_gpu_trainer_pin_and_move(address: str, kept_ids: list[str]) -> None:
    # No GPU here: pinning falls back to ordinary memory, and the DataLoader's own
    # pin_memory path and the non-blocking move still yield every row as tensors.
    from batchcraft.service.client.torch import to_device

    dataset = BatchDataset(
        address, "news", batch_size=8, columns=["id", "embedding"], job="gpu", pin_memory=True
    )
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, pin_memory=True)
    served = []
    for batch in loader:
        moved = to_device(batch, torch.device("cpu"))
        assert moved["embedding"].dtype == torch.float32 and moved["embedding"].shape[1] == 8
        assert moved["embedding"].is_pinned() == torch.cuda.is_available()
        moved["embedding"].add_(1.0)  # writable: a copy, not a view of the received message
        served += moved["id"]
    assert sorted(served) == sorted(kept_ids)


def test_pinned_tensors_hold_the_arrays_values(monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    from batchcraft.service.client import torch as service_torch

    arrays = {
        "f": np.arange(6, dtype=np.float32).reshape(2, 3),
        "i": np.arange(4, dtype=np.int64),
        "u": np.arange(3, dtype=np.uint8),
    }
    tensors = service_torch.to_tensors({**arrays, "ids": ["a", "b"]}, pin_memory=True)
    assert tensors["ids"] == ["a", "b"]
    for name, array in arrays.items():
        np.testing.assert_array_equal(tensors[name].numpy(), array)
    if not torch.cuda.is_available():  # run the pinned branch, with pinning itself faked away
        empty = torch.empty
        monkeypatch.setattr(
            torch, "empty", lambda *args, pin_memory=False, **kwargs: empty(*args, **kwargs)
        )
    for array in arrays.values():
        tensor = service_torch._tensor(array, pinned=True)
        assert tensor.dtype == torch.from_numpy(array).dtype
        np.testing.assert_array_equal(tensor.numpy(), array)


def test_hard_negative_masks_arrive_as_info_arrays(address: str) -> None:
    dataset = BatchDataset(
        address, "news", selector="hard_negative", batch_size=8, columns=["id"], job="masks"
    )
    batch = next(iter(dataset))
    mask = batch["info_arrays"]["false_negative_mask"]
    assert isinstance(mask, torch.Tensor) and mask.shape == (len(batch["id"]),) * 2
