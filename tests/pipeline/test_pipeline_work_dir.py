"""The work directory's bounds: ``work_dir = "none"`` keeps nothing, and a local work
directory keeps only the latest-used outputs of each stage (no Spark needed)."""

from __future__ import annotations

import os
from pathlib import Path

from batchcraft.pipeline.config import CurateConfig
from batchcraft.pipeline.resume import KEPT_PER_STAGE, StageStore, stage_store, work_dir_of


def test_none_keeps_nothing_and_the_default_sits_beside_a_local_out(tmp_path: Path) -> None:
    out = str(tmp_path / "curated")
    assert stage_store(CurateConfig(inputs=("x",), out=out, work_dir="none")) is None
    assert work_dir_of(CurateConfig(inputs=("x",), out=out)) == tmp_path / ".curated.work"
    named = CurateConfig(inputs=("x",), out=out, work_dir=str(tmp_path / "none"))
    assert work_dir_of(named) == tmp_path / "none"  # a path, not the keyword


def test_a_local_work_directory_keeps_the_latest_used_outputs_of_each_stage(
    tmp_path: Path,
) -> None:
    store = StageStore(tmp_path)
    for key, used_at in {"a": 100, "b": 200, "c": 300, "reused": 400}.items():
        (tmp_path / f"embed-{key}").mkdir()
        os.utime(tmp_path / f"embed-{key}", (used_at, used_at))
    (tmp_path / "embed-x.partial-1-ab").mkdir()  # a run's partial output: not pruned here
    (tmp_path / "cluster-other").mkdir()  # another stage: its own budget
    store.prune("embed")
    assert KEPT_PER_STAGE == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "cluster-other",
        "embed-c",
        "embed-reused",
        "embed-x.partial-1-ab",
    ]


def test_loading_removes_a_dead_runs_partial_outputs(tmp_path: Path) -> None:
    """A rerun that reuses a kept stage saves nothing; it still clears a killed run's."""
    dead = tmp_path / "embed-k.partial-999999999-ab"  # no such process
    dead.mkdir()
    assert StageStore(tmp_path).load(None, "embed", "missing") is None  # type: ignore[arg-type]
    assert not dead.exists()
