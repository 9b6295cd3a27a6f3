"""Status codes for every bad request; health, reflection and token auth."""

from __future__ import annotations

import shutil
from pathlib import Path

import grpc
import pytest
from certificates import self_signed_certificate
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from batchcraft.service import BatchClient, BatchServiceError

pytestmark = pytest.mark.grpc


def first_batch(address: str, **kwargs: object) -> dict:
    params = {"dataset": "news", "batch_size": 4, **kwargs}
    with BatchClient(address, **params) as client:  # type: ignore[arg-type]
        return next(iter(client))


@pytest.mark.parametrize(
    ("kwargs", "code", "message"),
    [
        ({"dataset": "nope"}, grpc.StatusCode.NOT_FOUND, "unknown dataset 'nope'"),
        ({"selector": "nope"}, grpc.StatusCode.INVALID_ARGUMENT, "unknown selector 'nope'"),
        ({"columns": ["id", "nope"]}, grpc.StatusCode.INVALID_ARGUMENT, "unknown column 'nope'"),
        ({"selector_params": {"bogus": 1}}, grpc.StatusCode.INVALID_ARGUMENT, "bogus"),
        (
            {"selector": "coreset", "selector_params": {"pool_multiplier": "abc"}},
            grpc.StatusCode.INVALID_ARGUMENT,
            "bad parameters .*pool_multiplier",
        ),
    ],
)
def test_bad_requests_get_their_status_code(
    address: str, kwargs: dict, code: grpc.StatusCode, message: str
) -> None:
    with pytest.raises(BatchServiceError, match=message) as caught:
        first_batch(address, **kwargs)
    assert caught.value.code == code
    assert len(first_batch(address)["id"]) == 4  # the server lives on


def raw_open(address: str, **fields: object) -> grpc.RpcError:
    """Open a session with raw protobuf fields (the client validates too early for these)."""
    from batchcraft.api.v1 import batch_service_pb2 as pb
    from batchcraft.api.v1 import batch_service_pb2_grpc as pb_grpc

    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.BatchServiceStub(channel)
        request = pb.SessionRequest(open=pb.OpenSession(**fields))
        with pytest.raises(grpc.RpcError) as caught:
            list(stub.Session(iter([request])))
    return caught.value


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"dataset": "news", "batch_size": 0}, "batch_size=0"),
        (
            {"dataset": "news", "batch_size": 4, "rank": 2, "world_size": 2},
            "rank=2 must be < world_size=2",
        ),
        ({"dataset": "news", "batch_size": 4, "selector_params_json": "{"}, "not valid JSON"),
    ],
)
def test_invalid_parameters_name_the_value(address: str, fields: dict, message: str) -> None:
    error = raw_open(address, **fields)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in error.details()


def test_job_reused_with_other_parameters_is_refused(address: str) -> None:
    first_batch(address, job="shared", batch_size=4)
    with pytest.raises(BatchServiceError) as caught:
        first_batch(address, job="shared", batch_size=5)
    assert caught.value.code == grpc.StatusCode.FAILED_PRECONDITION


def test_health_reports_serving(address: str) -> None:
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "batchcraft.v1.BatchService"):
            response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_service(address: str) -> None:
    with grpc.insecure_channel(address) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        assert "batchcraft.v1.BatchService" in set(database.get_services())
        method = database.FindFileContainingSymbol("batchcraft.v1.BatchService")
        assert method.package == "batchcraft.v1"


def test_token_auth(start_server) -> None:  # type: ignore[no-untyped-def]
    address = start_server(token="s3cret")
    for token, reason in ((None, "missing bearer token"), ("wrong", "wrong bearer token")):
        with pytest.raises(BatchServiceError, match=reason) as caught:
            first_batch(address, token=token)
        assert caught.value.code == grpc.StatusCode.UNAUTHENTICATED
    assert len(first_batch(address, token="s3cret")["id"]) == 4
    with pytest.raises(BatchServiceError, match="wrong bearer token") as caught:
        BatchClient(address, "news", batch_size=4, token="wrong").list_datasets()
    assert caught.value.code == grpc.StatusCode.UNAUTHENTICATED
    with grpc.insecure_channel(address) as channel:  # probes need no token
        response = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
        assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_corrupt_shard_fails_at_server_start_naming_the_file(
    curated_dir: Path, tmp_path: Path, server_process
) -> None:  # type: ignore[no-untyped-def]

    broken = tmp_path / "broken"
    shutil.copytree(curated_dir, broken)
    (broken / "data" / "part-00001.parquet").write_bytes(b"garbage")
    with pytest.raises(RuntimeError, match=r"part-00001\.parquet is corrupt"):
        server_process(str(broken), "--name", "news")


def test_feedback_for_unknown_ids_is_invalid_argument(address: str) -> None:
    client = BatchClient(
        address, "news", batch_size=4, columns=["id"], max_in_flight=1, job="bad-feedback"
    )
    with pytest.raises(BatchServiceError, match=r"ids that are not served: \['nope'\]") as caught:
        for _ in client:
            client.report(["nope"], losses=[1.0])
    client.close()
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert len(first_batch(address)["id"]) == 4


def test_tls_with_token_through_the_serve_cli(
    server_process, curated_dir: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    cert, key = self_signed_certificate(tmp_path)
    token_file = tmp_path / "token"
    token_file.write_text("s3cret\n")
    server = server_process(
        str(curated_dir), "--name", "news", "--tls-cert", str(cert), "--tls-key", str(key),
        "--token-file", str(token_file),
    )  # fmt: skip
    roots = cert.read_bytes()
    batch = first_batch(server.address, token="s3cret", root_certificates=roots)
    assert len(batch["id"]) == 4
    with pytest.raises(BatchServiceError) as caught:
        first_batch(server.address, token="wrong", root_certificates=roots)
    assert caught.value.code == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(BatchServiceError) as caught:  # plaintext against a TLS port
        first_batch(server.address, token="s3cret")
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    (tmp_path / "other").mkdir()
    other, _ = self_signed_certificate(tmp_path / "other")
    with pytest.raises(BatchServiceError) as caught:  # a certificate the client does not trust
        first_batch(server.address, token="s3cret", root_certificates=other.read_bytes())
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE


def test_sessions_at_the_limit_leave_health_checks_a_thread(start_server) -> None:  # type: ignore[no-untyped-def]
    address = start_server(max_workers=4)  # room for 2 sessions
    held = [
        BatchClient(address, "news", batch_size=4, job=f"held-{i}", num_epochs=0) for i in range(2)
    ]
    streams = [iter(client) for client in held]
    for stream in streams:
        next(stream)  # both sessions stay open, waiting for acks
    try:
        with pytest.raises(BatchServiceError, match="maximum of 2 sessions") as caught:
            first_batch(address, job="third")
        assert caught.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        with grpc.insecure_channel(address) as channel:  # a liveness probe still answers
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
            assert response.status == health_pb2.HealthCheckResponse.SERVING
            listed = BatchClient(address, "news", batch_size=4).list_datasets()
            assert [d["name"] for d in listed] == ["news"]
    finally:
        for client in held:
            client.close()
    assert len(first_batch(address, job="after")["id"]) == 4  # a closed session frees its slot


def test_a_second_server_cannot_take_a_port_in_use(start_server, curated_dir) -> None:  # type: ignore[no-untyped-def]
    from batchcraft.batcher.datasets import DatasetRegistry
    from batchcraft.batcher.served_dataset import CuratedDataset
    from batchcraft.errors import ConfigError
    from batchcraft.service import ServerConfig, create_server

    port = start_server().rsplit(":", 1)[1]
    registry = DatasetRegistry([CuratedDataset.open(curated_dir, "news")])
    with pytest.raises(ConfigError, match=f"cannot bind 127.0.0.1:{port}"):
        create_server(registry, ServerConfig(address=f"127.0.0.1:{port}", fsync=False))
