"""What the pipeline's modules import: the per-batch functions no Spark, the pipeline no
report, batcher or service (the job writes the dataset; the caller asks for the report)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import batchcraft.pipeline as package

STEP_FOLDERS = ("read", "dedup", "embedding", "cluster", "concepts", "scores", "write")


def modules_loaded_after_importing(modules: list[str]) -> set[str]:
    """The module names in ``sys.modules`` of a fresh interpreter once ``modules`` are imported."""
    script = "import importlib, sys\n"
    script += "".join(f"importlib.import_module({name!r})\n" for name in modules)
    script += "print('\\n'.join(sys.modules))\n"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    return set(result.stdout.split())


def pipeline_modules() -> list[str]:
    return [info.name for info in pkgutil.walk_packages(package.__path__, "batchcraft.pipeline.")]


def test_every_step_folder_has_its_spark_adapter_beside_pure_modules() -> None:
    for folder in STEP_FOLDERS:
        names = {info.name for info in pkgutil.iter_modules([f"{package.__path__[0]}/{folder}"])}
        assert "stage" in names, folder
        assert names - {"stage"}, f"{folder}/ holds its pure functions beside stage.py"


def test_pure_per_batch_functions_import_without_pyspark() -> None:
    pure = [
        name
        for name in pipeline_modules()
        if name.split(".")[2] in STEP_FOLDERS and not name.endswith(".stage")
    ]
    assert "batchcraft.pipeline.dedup.exact" in pure  # the synthetic corpus imports it
    loaded = modules_loaded_after_importing(pure)
    assert not {name for name in loaded if name.split(".")[0] == "pyspark"}


def test_the_pipeline_imports_no_report_batcher_or_service() -> None:
    loaded = modules_loaded_after_importing(pipeline_modules())
    assert "batchcraft.pipeline.curation_job" in loaded
    forbidden = ("batchcraft.report", "batchcraft.batcher", "batchcraft.service")
    assert not {name for name in loaded if name.startswith(forbidden)}
