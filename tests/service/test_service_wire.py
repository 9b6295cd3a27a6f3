"""Batch responses on the wire: valid protobuf, aligned zero-copy payloads, packing, credits."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import grpc
import numpy as np
import pyarrow as pa
import pytest

from batchcraft.api.v1 import batch_service_pb2 as pb
from batchcraft.api.v1 import batch_service_pb2_grpc as pb_grpc
from batchcraft.batcher.datasets import DatasetRegistry
from batchcraft.batcher.served_dataset import CuratedDataset
from batchcraft.service import BatchClient, BatchServiceError, ServerConfig, create_server
from batchcraft.service.server.packing import PACK_BYTES
from batchcraft.service.server.prefetch import prefetch
from batchcraft.service.wire.response import encode_batch, read_response, response_bytes
from batchcraft.synth.curated import write_curated_dataset

pytestmark = pytest.mark.grpc
SIZES = [0, 1, 7, 127, 128, 16_383, 16_384, 70_001, (1 << 21) + 3]


def header(index: int, text_length: int) -> pb.Batch:
    return pb.Batch(
        batch_id="j" * text_length,
        position=pb.Position(epoch=1, step=index),
        rank=index,
        num_rows=index * 3,
        info_json="{}" * (text_length // 3),
        info_arrays={"mask": b"\x01" * index},
    )


@pytest.mark.parametrize("packed", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_responses_parse_as_protobuf_with_aligned_payloads(packed: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    count = int(rng.integers(1, 5)) if packed else 1
    headers = [header(i, int(rng.integers(0, 300))) for i in range(count)]
    payloads = [rng.bytes(int(rng.choice(SIZES))) for _ in range(count)]
    data = response_bytes(
        [encode_batch(h, pa.py_buffer(p)) for h, p in zip(headers, payloads, strict=True)],
        packed=packed,
    )

    message = pb.SessionResponse.FromString(data)  # what any protobuf client sees
    assert message.WhichOneof("kind") == ("batches" if packed else "batch")
    parsed = list(message.batches.batches) if packed else [message.batch]
    assert [m.record_batch for m in parsed] == payloads
    for m in parsed:
        m.ClearField("record_batch")
        m.ClearField("padding")
    assert parsed == headers

    views = read_response(data)
    assert isinstance(views, list)
    assert [v.header for v in views] == headers
    assert [bytes(v.payload) for v in views] == payloads
    for view in views:
        if len(view.payload):
            assert np.frombuffer(view.payload, np.uint8).ctypes.data % 8 == 0


def test_other_responses_are_plain_messages() -> None:
    opened = pb.SessionResponse(opened=pb.SessionOpened(job="j", max_in_flight=3))
    assert read_response(opened.SerializeToString()) == opened
    # a batch serialised by the protobuf runtime reads the same way
    batch = pb.SessionResponse(batch=pb.Batch(batch_id="b", record_batch=b"abc"))
    (view,) = read_response(batch.SerializeToString())  # type: ignore[misc]
    assert view.header.batch_id == "b" and bytes(view.payload) == b"abc"
    # batches after another field (an unknown one here) are decoded, not dropped
    unknown_first = b"\xf8\x07\x01" + batch.SerializeToString()  # field 127, varint 1
    packed = pb.SessionResponse(
        batches=pb.Batches(batches=[pb.Batch(batch_id="c", record_batch=b"de")])
    ).SerializeToString()
    for data, ids, payloads in (
        (unknown_first, ["b"], [b"abc"]),
        (b"\xf8\x07\x01" + packed, ["c"], [b"de"]),
    ):
        views = read_response(data)
        assert isinstance(views, list)
        assert [v.header.batch_id for v in views] == ids
        assert [bytes(v.payload) for v in views] == payloads
        assert not views[0].header.record_batch


def raw_session(address: str, open_request: pb.OpenSession) -> Iterator[pb.SessionResponse]:
    """A protobuf-runtime client acknowledging every batch, as clients before packing did."""
    requests: queue.Queue[pb.SessionRequest | None] = queue.Queue()
    requests.put(pb.SessionRequest(open=open_request))
    with grpc.insecure_channel(address) as channel:
        call = pb_grpc.BatchServiceStub(channel).Session(iter(requests.get, None))
        try:
            for response in call:
                yield response
                batches = (
                    [response.batch]
                    if response.HasField("batch")
                    else list(response.batches.batches)
                )
                for batch in batches:
                    requests.put(pb.SessionRequest(ack=pb.Ack(count=1, next=batch.next)))
        finally:
            requests.put(None)


def test_clients_without_packing_get_one_batch_per_message(
    address: str, kept_ids: list[str]
) -> None:
    request = pb.OpenSession(
        dataset="news", batch_size=4, world_size=1, columns=["id"], job="legacy", num_epochs=1
    )
    kinds, ids = [], []
    for response in raw_session(address, request):
        kinds.append(response.WhichOneof("kind"))
        if response.HasField("batch"):
            schema = pa.schema([("id", pa.string())])
            batch = pa.ipc.read_record_batch(pa.py_buffer(response.batch.record_batch), schema)
            ids += batch.column("id").to_pylist()
    assert kinds[0] == "opened" and set(kinds[1:]) == {"batch"}
    assert sorted(ids) == sorted(kept_ids)


def test_small_batches_are_packed_and_served_identically(address: str) -> None:
    request = pb.OpenSession(
        dataset="news",
        batch_size=2,
        world_size=1,
        columns=["id"],
        job="packed",
        num_epochs=1,
        max_batches_per_message=8,
    )
    responses = list(raw_session(address, request))
    assert responses[0].opened.max_batches_per_message == 8
    sizes = [len(r.batches.batches) for r in responses[1:]]
    assert sizes[0] == 1  # the first batch is not held back
    assert max(sizes) > 1 and all(size <= 8 for size in sizes)

    def served(packing: int) -> list[tuple[list[str], np.ndarray]]:
        client = BatchClient(
            address,
            "news",
            batch_size=2,
            columns=["id", "embedding"],
            seed=4,
            job=f"packing-{packing}",
            max_batches_per_message=packing,
        )
        with client:
            return [(list(batch["id"]), batch["embedding"]) for batch in client]

    # Packed batches are cut from one gather of the whole group: same rows, same values.
    alone, packed = served(1), served(16)
    assert [ids for ids, _ in alone] == [ids for ids, _ in packed]
    for (_, one), (_, other) in zip(alone, packed, strict=True):
        np.testing.assert_array_equal(one, other)


@pytest.mark.parametrize("max_in_flight", [1, 2, 5])
def test_credit_acks_stream_the_whole_epoch(
    address: str, kept_ids: list[str], max_in_flight: int
) -> None:
    client = BatchClient(
        address, "news", batch_size=3, columns=["id"], max_in_flight=max_in_flight, num_epochs=2
    )
    with client:
        served = [i for batch in client for i in batch["id"]]
    assert sorted(served) == sorted(kept_ids * 2)
    assert client.state_dict()["next"] == [2, 0]


def test_a_batch_too_large_for_a_message_is_resource_exhausted(tmp_path) -> None:  # type: ignore[no-untyped-def]
    big = write_curated_dataset(tmp_path / "big", num_rows=200, dim=3000, num_shards=1)
    server = create_server(
        DatasetRegistry([CuratedDataset.open(big, "big")]),
        ServerConfig(fsync=False, max_message_bytes=1 << 20),
    ).start()
    try:
        client = BatchClient(
            f"127.0.0.1:{server.port}", "big", batch_size=100, columns=["embedding"]
        )
        with pytest.raises(BatchServiceError, match="max message size") as caught:
            next(iter(client))
        assert caught.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        server.stop(grace=0)


def serve_tail_epochs(tmp_path, config: ServerConfig, epochs: int, **client_options) -> None:  # type: ignore[no-untyped-def]
    """Serve ``epochs`` epochs of five 100 KB batches and a 1-row tail; check each kept id
    arrives once per epoch. The group after a tail is sized by the tail's payload, so it
    asks for many full batches: the server must still cut it into messages that fit."""
    root = write_curated_dataset(tmp_path / "d", num_rows=126, dim=1000, num_shards=1)
    server = create_server(DatasetRegistry([CuratedDataset.open(root, "d")]), config).start()
    try:
        client = BatchClient(
            f"127.0.0.1:{server.port}", "d", batch_size=25, columns=["id", "embedding"],
            num_epochs=epochs, **client_options,
        )  # fmt: skip
        with client:
            served = [i for batch in client for i in batch["id"]]
        assert sorted(served) == sorted(CuratedDataset.open(root).ids.tolist() * epochs)
    finally:
        server.stop(grace=0)


def test_packed_messages_stay_within_the_message_limit(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # 16 full batches (1.6 MB) would pass the server's 1 MiB limit.
    serve_tail_epochs(
        tmp_path,
        ServerConfig(fsync=False, max_message_bytes=1 << 20, max_in_flight=32),
        5,
        max_in_flight=32,
        max_batches_per_message=16,
    )


def test_prefetch_raises_the_producers_error_in_the_consumer() -> None:
    def produce(active):  # type: ignore[no-untyped-def]
        yield 1
        raise ValueError("broken batch")

    items = prefetch(produce, lambda: True)
    assert next(items) == 1
    with pytest.raises(ValueError, match="broken batch"):
        next(items)


def test_closing_prefetch_stops_the_producer_and_runs_its_cleanup() -> None:
    cleaned = threading.Event()

    def produce(active):  # type: ignore[no-untyped-def]
        try:
            number = 0
            while active():
                yield number
                number += 1
        finally:
            cleaned.set()

    items = prefetch(produce, lambda: True, depth=2)
    assert [next(items) for _ in range(5)] == [0, 1, 2, 3, 4]
    items.close()  # type: ignore[attr-defined]
    assert cleaned.wait(5)


def test_packed_messages_stay_within_the_packing_size(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # No message may pass PACK_BYTES, so a client whose limit is a little above it is served.
    serve_tail_epochs(
        tmp_path,
        ServerConfig(fsync=False, max_in_flight=64),
        8,
        max_in_flight=64,
        max_batches_per_message=64,
        max_message_bytes=PACK_BYTES + (256 << 10),
    )
