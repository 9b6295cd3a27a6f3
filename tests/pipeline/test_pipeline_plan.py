"""Epoch plans on Spark: the selections online serving makes, served from the plan."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from batchcraft.batcher.config import JobConfig
from batchcraft.batcher.datasets import DatasetRegistry
from batchcraft.batcher.job import Job
from batchcraft.batcher.plan_rows import PLAN_FILE, SELECTIONS_DIR, read_selections
from batchcraft.batcher.plans import PlanInfo
from batchcraft.batcher.served_dataset import CuratedDataset
from batchcraft.cli import main
from batchcraft.errors import ConfigError, OutputError
from batchcraft.planning.spark_plan import PlanRequest, build_plan
from batchcraft.service import BatchClient, ServerConfig, create_server
from batchcraft.synth.curated import write_curated_dataset


@pytest.fixture(scope="module")
def curated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_curated_dataset(tmp_path_factory.mktemp("plan") / "news", num_rows=700, dim=16)


@pytest.mark.parametrize(
    ("selector", "params"),
    [
        ("concept", {}),
        ("coreset", {"pool_multiplier": 4}),
        ("hard_negative", {"cluster_size": 8, "initial_cluster_size": 2}),
    ],
)
def test_a_plan_holds_the_selections_online_serving_makes(
    spark: Any, curated: Path, tmp_path: Path, selector: str, params: dict
) -> None:
    request = PlanRequest(curated, tmp_path / "plan", selector, params, batch_size=16,
                          world_size=2, epochs=2, seed=5)  # fmt: skip
    plan = build_plan(request, spark)
    dataset = CuratedDataset.open(curated)
    job = Job("online", request.job_config(dataset.name), dataset)
    planned = read_selections(plan.path)
    steps = job.steps_in(0)
    assert plan.epochs == 2 and len(planned) == 2 * steps > 0
    for position, selection in planned.items():
        online = job.compute_selection(position)
        np.testing.assert_array_equal(selection.positions, online.positions)
        if online.weights is None:
            assert selection.weights is None
        else:
            np.testing.assert_allclose(selection.weights, online.weights, rtol=1e-6)
        assert selection.info.keys() == online.info.keys()
        for key, value in online.info.items():  # hard_negative's masks: bit for bit
            if isinstance(value, np.ndarray | float):
                np.testing.assert_allclose(selection.info[key], value, rtol=1e-6)
            else:
                assert selection.info[key] == value, key
    assert not any(p.name.startswith(".plan") for p in tmp_path.iterdir())  # no staging left


def served(address: str, epochs: int, seed: int = 2, selector: str = "concept",
           batch_size: int = 4, params: dict | None = None) -> list[list[str]]:  # fmt: skip
    """Both ranks' batches of a 2-rank job, rank after rank."""
    batches = []
    for rank in range(2):
        client = BatchClient(address, "news", selector, batch_size, rank=rank, world_size=2,
                             columns=["id"], seed=seed, num_epochs=epochs, selector_params=params,
                             job=f"plan-{epochs}-{seed}")  # fmt: skip
        with client:
            batches += [list(batch["id"]) for batch in client]
    return batches


def test_serve_uses_a_matching_plan_and_selects_online_past_it(
    spark: Any, curated: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    request = PlanRequest(curated, tmp_path / "plan", "concept", batch_size=4, world_size=2,
                          epochs=1, seed=2)  # fmt: skip
    build_plan(request, spark)
    other = PlanRequest(curated, tmp_path / "other", "concept", batch_size=8, epochs=1, seed=9)
    build_plan(other, spark)

    def start(**settings: Any) -> Any:
        registry = DatasetRegistry([CuratedDataset.open(curated, "news")])
        return create_server(registry, ServerConfig(fsync=False, **settings)).start()

    plain, planned = start(), start(plans=(tmp_path / "other", tmp_path / "plan"))
    try:
        with caplog.at_level(logging.INFO, logger="batchcraft.batcher"):
            from_plan = served(f"127.0.0.1:{planned.port}", epochs=2)
            served(f"127.0.0.1:{planned.port}", epochs=1, seed=4)  # no plan has seed 4
        assert from_plan == served(f"127.0.0.1:{plain.port}", epochs=2)
        events = {r.msg.name: r.msg.fields for r in caplog.records if hasattr(r.msg, "fields")}
        assert Path(events["plan_used"]["plan"]).name == "plan"  # the seed-2 plan, not seed 9
        assert events["plan_not_used"]["differs"] == ["seed"]  # what it says of the seed-4 job
        config = JobConfig("news", "concept", batch_size=4, world_size=2, seed=2)
        job = planned.servicer.jobs.get_or_create("plan-2-2", config)  # the served job
        assert job.ahead.served == 2 * job.steps_in(0)  # both ranks: epoch 0 planned, 1 online
        metrics = planned.servicer.metrics
        made = metrics.value(
            "batchcraft_made_ahead_batches_total",
            dataset="news",
            selector="concept",
            made_by="plan",
        )
        assert made == 2 * job.steps_in(0)  # both ranks' parts, on /metrics
        assert metrics.value("batchcraft_plan_sessions_total", outcome="used") == 2
        assert metrics.value("batchcraft_plan_sessions_total", outcome="not_used") == 2
    finally:
        plain.stop(grace=0)
        planned.stop(grace=0)


def test_hard_negative_is_served_from_its_plan_as_online(
    spark: Any, curated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An epoch-level selector: the server takes whole epochs from the plan (no
    clustering on the request path) and the ranks get the batches of online selection."""
    request = PlanRequest(curated, tmp_path / "plan", "hard_negative", {"cluster_size": 8},
                          batch_size=16, world_size=2, epochs=2, seed=3)  # fmt: skip
    build_plan(request, spark)
    registry = DatasetRegistry([CuratedDataset.open(curated, "news")])
    plain = create_server(registry, ServerConfig(fsync=False)).start()
    planned = create_server(registry, ServerConfig(fsync=False, plans=(request.out,))).start()
    try:
        args = {"epochs": 2, "seed": 3, "selector": "hard_negative", "batch_size": 16,
                "params": {"cluster_size": 8}}  # fmt: skip
        planned_epochs: list[int] = []  # epochs the server clustered itself
        build = Job.build_epoch_plan
        monkeypatch.setattr(
            Job,
            "build_epoch_plan",
            lambda job, epoch: planned_epochs.append(epoch) or build(job, epoch),
        )
        from_plan = served(f"127.0.0.1:{planned.port}", **args)
        assert planned_epochs == []  # not even the epoch after the plan, to count its steps
        assert from_plan == served(f"127.0.0.1:{plain.port}", **args)
        assert planned_epochs == [0, 1]  # online: the plain server clusters each epoch
        config = JobConfig("news", "hard_negative", {"cluster_size": 8}, 16, world_size=2, seed=3)
        job = planned.servicer.jobs.get_or_create("plan-2-3", config)
        # every global step of both epochs (a selection that uses feedback is cached for
        # the other rank, so each is taken from the plan once)
        assert job.plan_used and job.ahead.served == 2 * job.steps_in(0)
    finally:
        plain.stop(grace=0)
        planned.stop(grace=0)


def test_jobs_served_from_one_plan_read_it_once(
    spark: Any, curated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each new job read and decoded the whole plan again when its session opened (for 628
    selections of hard_negative, longer than serving them)."""
    from batchcraft.batcher import plan_rows

    request = PlanRequest(curated, tmp_path / "plan", "concept", batch_size=8, epochs=1, seed=4)
    build_plan(request, spark)
    reads: list[Path] = []
    read = plan_rows.PlanTable.__init__

    def counting(table: plan_rows.PlanTable, path: Path) -> None:
        reads.append(path)
        read(table, path)

    monkeypatch.setattr(plan_rows.PlanTable, "__init__", counting)
    registry = DatasetRegistry([CuratedDataset.open(curated, "news")])
    server = create_server(registry, ServerConfig(fsync=False, plans=(request.out,))).start()
    try:
        runs = []
        for job in ("first", "second", "third"):
            with BatchClient(f"127.0.0.1:{server.port}", "news", "concept", 8, seed=4,
                             columns=["id"], num_epochs=1, job=job) as client:  # fmt: skip
                runs.append([list(batch["id"]) for batch in client])
        assert runs[0] == runs[1] == runs[2] and len(runs[0]) > 0
        assert len(reads) == 1
    finally:
        server.stop(grace=0)


def test_a_plan_made_on_executor_jvms_equals_local_mode(
    spark: Any, curated: Path, tmp_path: Path
) -> None:
    """``local-cluster``: two executor JVMs, each task opening the dataset itself."""
    local = build_plan(PlanRequest(curated, tmp_path / "local", "hard_negative", {"cluster_size": 8},
                                   batch_size=8, world_size=2, epochs=2, seed=4), spark)  # fmt: skip
    out = tmp_path / "cluster"
    command = [sys.executable, "-m", "batchcraft", "plan", str(curated), "--selector",
               "hard_negative", "--params", '{"cluster_size": 8}', "--batch-size", "8",
               "--world-size", "2", "--epochs", "2", "--seed", "4", "--out", str(out),
               "--master", "local-cluster[2,1,2048]"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    expected, got = read_selections(local.path), read_selections(out)
    assert got.keys() == expected.keys()
    for position, selection in expected.items():
        np.testing.assert_array_equal(got[position].positions, selection.positions)
        np.testing.assert_array_equal(
            got[position].info["false_negative_mask"], selection.info["false_negative_mask"]
        )


def test_a_partial_or_corrupt_plan_is_refused_at_server_start(
    spark: Any, curated: Path, tmp_path: Path
) -> None:
    plan = build_plan(PlanRequest(curated, tmp_path / "plan", "concept", batch_size=8), spark)
    parts = sorted((plan.path / SELECTIONS_DIR).glob("*.parquet"))
    registry = DatasetRegistry([CuratedDataset.open(curated, "news")])
    parts[0].write_bytes(parts[0].read_bytes()[:100])  # torn
    with pytest.raises(ConfigError, match="unreadable selections"):
        create_server(registry, ServerConfig(fsync=False, plans=(plan.path,)))
    parts[0].unlink()  # lost
    with pytest.raises(ConfigError, match=r"incomplete|unreadable"):
        PlanInfo.read(plan.path)


def test_what_cannot_be_planned_is_refused(spark: Any, curated: Path, tmp_path: Path) -> None:
    for selector in ("uniform", "jest"):
        with pytest.raises(ConfigError, match="cannot be planned"):
            build_plan(PlanRequest(curated, tmp_path / selector, selector, batch_size=8), spark)
    (tmp_path / "exists").mkdir()
    with pytest.raises(OutputError, match="exists"):
        build_plan(PlanRequest(curated, tmp_path / "exists", "concept", batch_size=8), spark)
    with pytest.raises(ConfigError, match=PLAN_FILE):
        PlanInfo.read(tmp_path / "exists")  # a crashed run's directory is no plan


def test_the_plan_command(spark: Any, curated: Path, tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "cli-plan"
    argv = ["plan", str(curated), "--selector", "concept", "--batch-size", "8", "--epochs", "1",
            "--out", str(out), "--master", "local[2]"]  # fmt: skip
    assert main(argv) == 0 and (out / PLAN_FILE).exists()
    assert PlanInfo.read(out).key.selector == "concept"
    assert main([*argv[:-4], "--params", "[1]", "--out", str(tmp_path / "x")]) == 2
    assert "--params must be a JSON object" in capsys.readouterr().err


def test_a_plan_made_from_and_into_an_object_store_is_served_from_it(
    spark: Any, curated: Path, tmp_path: Path, s3_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Tasks copy the dataset from the store and write their parts into it; ``plan.json``
    last; ``serve --plans s3://…`` copies the plan to a local cache."""
    import pyarrow.fs as pafs

    from batchcraft.batcher.remote_plans import local_plan
    from batchcraft.service.cli import serve_main
    from batchcraft.storage import kind, list_files, resolve

    bucket = s3_server.new_bucket()
    dataset_url = f"s3://{bucket}/curated/news"
    store = resolve(dataset_url, s3_server.options)
    pafs.copy_files(str(curated), store.path, destination_filesystem=store.filesystem)
    settings = {"batch_size": 4, "world_size": 2, "epochs": 1, "seed": 2}
    local = build_plan(PlanRequest(curated, tmp_path / "local", "concept", **settings), spark)
    url = f"s3://{bucket}/plans/concept"
    with pytest.MonkeyPatch.context() as environment:  # the tasks need storage_options alone
        environment.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
        stored = build_plan(
            PlanRequest(dataset_url, url, "concept", storage_options=s3_server.options,
                        **settings),  # type: ignore[arg-type]
            spark,
        )  # fmt: skip
    assert stored.key == local.key and stored.dataset == "news"
    names = {f.path.rsplit("/", 1)[1] for f in list_files(resolve(url, s3_server.options))}
    assert "plan.json" in names and any(n.endswith(".parquet") for n in names)
    expected, got = read_selections(local.path), read_selections(local_plan(url))
    assert got.keys() == expected.keys()
    for position, selection in expected.items():
        np.testing.assert_array_equal(got[position].positions, selection.positions)
    with pytest.raises(OutputError, match="exists"):  # never overwritten, on a store too
        build_plan(PlanRequest(dataset_url, url, "concept", storage_options=s3_server.options,
                               **settings), spark)  # type: ignore[arg-type]  # fmt: skip
    assert kind(resolve(f"s3://{bucket}/plans/concept/plan.json")) == pafs.FileType.File

    registry = DatasetRegistry([CuratedDataset.open(curated, "news")])
    planned = create_server(registry, ServerConfig(fsync=False, plans=(local_plan(url),)))
    planned.start()
    try:
        from_store = served(f"127.0.0.1:{planned.port}", epochs=1)
        config = JobConfig("news", "concept", batch_size=4, world_size=2, seed=2)
        assert planned.servicer.jobs.get_or_create("plan-1-2", config).plan_used
    finally:
        planned.stop(grace=0)
    plain = create_server(registry, ServerConfig(fsync=False)).start()
    try:
        assert from_store == served(f"127.0.0.1:{plain.port}", epochs=1)
    finally:
        plain.stop(grace=0)
    missing = f"s3://{bucket}/plans/none"  # no plan.json there: one line, exit code 2
    assert serve_main([str(curated), "--port", "0", "--plans", missing]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if "batchcraft" in line]
    assert len(lines) == 1 and f"{missing} is no epoch plan" in lines[0], lines
