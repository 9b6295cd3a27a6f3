"""The training example runs on the demo dataset: the demo corpus curated as `batchcraft demo`
curates it (label from its topic, reference scores of its pairs, the real model)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from pipeline_helpers import Curated
from test_examples import load_example

from batchcraft.batcher.datasets import DatasetRegistry
from batchcraft.batcher.served_dataset import CuratedDataset
from batchcraft.service import ServerConfig, create_server

pytestmark = [pytest.mark.spark, pytest.mark.model, pytest.mark.grpc]


@pytest.fixture
def demo_address(curated: Curated) -> Iterator[str]:
    registry = DatasetRegistry([CuratedDataset.open(curated.out, "demo")])
    server = create_server(registry, ServerConfig(fsync=False)).start()
    yield f"127.0.0.1:{server.port}"
    server.stop(grace=0)


@pytest.mark.parametrize("pairwise", [False, True], ids=["losses", "pairwise"])
def test_the_example_trains_with_jest_on_the_demo_dataset(
    demo_address: str, pairwise: bool
) -> None:
    arguments = [
        "--target",
        demo_address,
        "--dataset",
        "demo",
        "--steps",
        "20",
        "--batch-size",
        "16",
    ]
    summary = load_example().main(arguments + (["--pairwise"] if pairwise else []))
    assert len(summary.losses) == 20
    warm_up = summary.served_by.index("jest")  # uniform until the first report arrives
    assert warm_up <= 3 and set(summary.served_by[warm_up:]) == {"jest"}
    assert np.all(np.isfinite(summary.losses))
