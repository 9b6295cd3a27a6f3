"""Shared fixtures of the pipeline tests: one SparkSession and one curated synthetic corpus."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pipeline_helpers import Curated, curate_synth


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    from batchcraft.pipeline.spark import spark_session

    session = spark_session("local[2]")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def synth_corpus(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from batchcraft.synth import generate_corpus

    return generate_corpus(tmp_path_factory.mktemp("synth"), num_rows=400, seed=3, bad_rows=True)


@pytest.fixture(scope="session")
def curated(spark: Any, synth_corpus: Any, tmp_path_factory: pytest.TempPathFactory) -> Curated:
    return curate_synth(spark, synth_corpus, tmp_path_factory.mktemp("curated") / "out")
