"""The Dockerfile and the Kubernetes example: parsed and checked against the CLI they run.

`docker build` and a cluster are not available where the tests run, so these check what
can go stale without them: the arguments the manifests pass to `batchcraft`, the ports and
probes, and the image's install order.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest

from batchcraft.cli import build_parser

yaml = pytest.importorskip("yaml")
ROOT = Path(__file__).resolve().parents[1]


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of the Dockerfile, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def manifests() -> list[dict[str, Any]]:
    return list(yaml.safe_load_all((ROOT / "deploy/kubernetes/batchcraft.yaml").read_text()))


def test_the_image_installs_cpu_torch_before_batchcraft_and_serves_by_default() -> None:
    steps = dockerfile()
    assert steps[0] == ("FROM", "python:3.11-slim")
    runs = [args for kind, args in steps if kind == "RUN"]
    torch_step = next(i for i, r in enumerate(runs) if "torch==" in r)
    package_step = next(i for i, r in enumerate(runs) if "'.[cpu]'" in r)
    assert torch_step < package_step and "whl/cpu" in runs[torch_step]
    assert "openjdk-17" in runs[0]  # Spark for curate and plan
    assert ("ENTRYPOINT", '["batchcraft"]') in steps
    assert any(kind == "HEALTHCHECK" and "health_pb2" in args for kind, args in steps)
    exposed = " ".join(args for kind, args in steps if kind == "EXPOSE").split()
    assert "50051" in exposed
    health = next(args for kind, args in steps if kind == "HEALTHCHECK")
    assert "127.0.0.1:50051" in health


def test_the_statefulset_runs_a_serve_command_the_cli_accepts() -> None:
    kinds = {m["kind"]: m for m in manifests()}
    assert set(kinds) == {"Service", "StatefulSet", "PersistentVolumeClaim"}
    service, stateful = kinds["Service"], kinds["StatefulSet"]
    assert service["spec"]["clusterIP"] == "None"  # headless: DNS names every replica
    assert stateful["spec"]["serviceName"] == service["metadata"]["name"]
    assert stateful["spec"]["replicas"] >= 2
    pod = stateful["spec"]["template"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    (container,) = pod["spec"]["containers"]
    args = build_parser().parse_args(container["args"])  # fails on a flag that does not exist
    assert args.command == "serve" and args.host == "0.0.0.0"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["grpc"] == args.port == container["readinessProbe"]["grpc"]["port"]
    assert ports["metrics"] == args.metrics_port
    assert args.metrics_token_file is not None  # metrics exposed beyond loopback need a token
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts[str(args.checkpoint_dir)] == "state"
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    claim = volumes["state"]["persistentVolumeClaim"]["claimName"]
    assert kinds["PersistentVolumeClaim"]["metadata"]["name"] == claim
    assert kinds["PersistentVolumeClaim"]["spec"]["accessModes"] == ["ReadWriteMany"]
    assert all(str(path).startswith("/data/curated") for path in args.paths)
    # replicas on one checkpoint store hold leases, and name their pod to redirected trainers
    assert args.lease_seconds > 0
    variables = {variable["name"]: variable for variable in container["env"]}
    assert variables["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    pod_dns = f"$(POD_NAME).{service['metadata']['name']}.{service['metadata']['namespace']}"
    assert args.advertise_address == f"{pod_dns}.svc.cluster.local:{args.port}"


def test_the_dockerfile_usage_line_is_a_valid_serve_command() -> None:
    usage = next(
        line for line in (ROOT / "Dockerfile").read_text().splitlines() if "serve /data" in line
    )
    command = shlex.split(usage.lstrip("# "))
    assert build_parser().parse_args(command).command == "serve"
