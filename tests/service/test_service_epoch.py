"""End to end over gRPC: epochs, ranks, determinism, large batches, feedback."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from batchcraft.batcher.config import JobConfig, Position
from batchcraft.batcher.datasets import DatasetRegistry
from batchcraft.batcher.job import Job
from batchcraft.batcher.served_dataset import CuratedDataset
from batchcraft.batcher.stream import RankStream
from batchcraft.service import BatchClient, ServerConfig, create_server
from batchcraft.service.wire.assembly import Gather
from batchcraft.synth.curated import write_curated_dataset

pytestmark = pytest.mark.grpc


def epoch_ids(
    address: str, rank: int = 0, world_size: int = 1, **kwargs: object
) -> list[list[str]]:
    client = BatchClient(
        address, "news", batch_size=8, rank=rank, world_size=world_size, columns=["id"], **kwargs
    )  # type: ignore[arg-type]
    with client:
        return [list(batch["id"]) for batch in client]


def test_uniform_epoch_serves_every_kept_id_once(address: str, kept_ids: list[str]) -> None:
    batches = epoch_ids(address, seed=3)
    served = [i for batch in batches for i in batch]
    assert sorted(served) == sorted(kept_ids)
    assert len(served) == len(set(served))


def test_prefetching_server_serves_the_same_batches(start_server, address: str) -> None:  # type: ignore[no-untyped-def]
    prefetching = start_server(prefetch=True)
    for packing in (1, 16):
        expected = epoch_ids(address, seed=5, num_epochs=2, max_batches_per_message=packing)
        assert epoch_ids(prefetching, seed=5, num_epochs=2, max_batches_per_message=packing) == (
            expected
        )


def test_two_ranks_are_disjoint_with_equal_counts(address: str, kept_ids: list[str]) -> None:
    results: dict[int, list[list[str]]] = {}
    threads = [
        threading.Thread(
            target=lambda r=r: results.__setitem__(r, epoch_ids(address, r, 2, seed=1, job="two"))
        )
        for r in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results[0]) == len(results[1])
    ids0 = {i for batch in results[0] for i in batch}
    ids1 = {i for batch in results[1] for i in batch}
    assert not ids0 & ids1
    assert sorted(ids0 | ids1) == sorted(kept_ids)


def test_same_seed_same_sequence(address: str) -> None:
    assert epoch_ids(address, seed=5, job="a") == epoch_ids(address, seed=5, job="b")
    assert epoch_ids(address, seed=5, job="c") != epoch_ids(address, seed=6, job="d")


def test_batches_decode_to_numpy(address: str) -> None:
    client = BatchClient(
        address, "news", batch_size=4, columns=["id", "embedding", "cluster", "concepts"]
    )
    batch = next(iter(client))
    assert batch["embedding"].shape == (4, 8) and batch["embedding"].dtype == np.float32
    assert batch["cluster"].dtype == np.int32
    assert isinstance(batch["concepts"][0], list)
    assert client.last_meta is not None and client.last_meta.batch_id.endswith("/e0/s0/r0")
    client.close()


def test_batches_above_4_mib_are_served(tmp_path) -> None:  # type: ignore[no-untyped-def]
    big = write_curated_dataset(tmp_path / "big", num_rows=600, dim=3000, num_shards=1)
    server = create_server(
        DatasetRegistry([CuratedDataset.open(big, "big")]), ServerConfig(fsync=False)
    ).start()
    try:
        client = BatchClient(
            f"127.0.0.1:{server.port}", "big", batch_size=500, columns=["embedding"]
        )
        sizes = [b["embedding"].nbytes for b in client]
        assert max(sizes) == 500 * 3000 * 4 > 4 << 20
        assert sum(s // (3000 * 4) for s in sizes) == 600
    finally:
        server.stop(grace=0)


@pytest.mark.parametrize("packing", [1, 16])
def test_wide_batches_gathered_into_responses_hold_the_datasets_rows(  # type: ignore[no-untyped-def]
    tmp_path, monkeypatch, packing
) -> None:
    # 96 rows x (384 float32 + 128 int32) = 192 KiB: spliced batches, whose rows are gathered
    # straight into the response. Every batch holds the job's rows, in the job's order.
    root = write_curated_dataset(
        tmp_path / "wide", num_rows=960, dim=384, num_tokens=128, duplicate_every=10
    )
    dataset = CuratedDataset.open(root, "wide")  # the kept rows
    embeddings = np.asarray(dataset.table["embedding"].to_pylist(), np.float32)
    tokens = np.asarray(dataset.table["tokens"].to_pylist(), np.int32)
    gathers: list[int] = []
    into = Gather.into
    monkeypatch.setattr(Gather, "into", lambda self, out: (gathers.append(1), into(self, out)))
    server = create_server(DatasetRegistry([dataset]), ServerConfig(fsync=False)).start()
    try:
        client = BatchClient(
            f"127.0.0.1:{server.port}",
            "wide",
            batch_size=96,
            columns=["embedding", "tokens"],
            num_epochs=2,
            seed=4,
            max_batches_per_message=packing,
        )
        with client:
            batches = list(client)
    finally:
        server.stop(grace=0)
    expected = RankStream(Job("expected", JobConfig("wide", batch_size=96, seed=4), dataset), 0)
    for batch in batches:
        rows = expected.next().positions
        np.testing.assert_array_equal(batch["embedding"], embeddings[rows])
        np.testing.assert_array_equal(batch["tokens"], tokens[rows])
    assert expected.position == Position(2, 0)  # two whole epochs
    # every batch but the first (Arrow learns the row count's IPC prefix) gathered 2 columns
    assert len(gathers) == 2 * (len(batches) - 1)
