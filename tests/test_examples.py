"""examples/train_with_feedback.py trains against a served curated dataset with labels."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batchcraft.batcher.datasets import DatasetRegistry
from batchcraft.batcher.served_dataset import CuratedDataset
from batchcraft.dataset import layout
from batchcraft.dataset.arrays import to_fixed_size_list
from batchcraft.dataset.manifest import write_manifest
from batchcraft.dataset.schema import SCHEMA_VERSION
from batchcraft.service import ServerConfig, create_server

pytest.importorskip("torch")
pytestmark = pytest.mark.grpc

EXAMPLE = Path(__file__).parents[1] / "examples" / "train_with_feedback.py"
NUM_ROWS, DIM, CLASSES = 2000, 16, 4


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("train_with_feedback", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def labelled_dataset(root: Path) -> CuratedDataset:
    """Four classes of clustered rows, pairs, 30% flipped labels with a high ``ref_loss``."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(CLASSES, DIM))
    classes = rng.integers(0, CLASSES, NUM_ROWS)
    vectors = centres[classes] + 0.5 * rng.normal(size=(NUM_ROWS, DIM))
    noisy = rng.random(NUM_ROWS) < 0.3
    labels = np.where(noisy, (classes + 1) % CLASSES, classes)
    table = pa.table(
        {
            "id": [f"r{i:05d}" for i in range(NUM_ROWS)],
            "embedding": to_fixed_size_list(vectors / np.linalg.norm(vectors, axis=1)[:, None]),
            "pair_embedding": to_fixed_size_list(vectors + 0.1 * rng.normal(size=vectors.shape)),
            "label": pa.array([f"class-{c}" for c in labels]),
            "cluster": pa.array(classes, pa.int32()),
            "ref_loss": pa.array(np.where(noisy, 3.0, 0.1), pa.float32()),
            "keep": pa.array(np.ones(NUM_ROWS, bool)),
        }
    )
    layout.data_dir(root).mkdir(parents=True)
    pq.write_table(table, root / layout.shard_name(0))
    write_manifest(root, {"schema_version": SCHEMA_VERSION})
    return CuratedDataset.open(root, "labelled")


@pytest.fixture
def address(tmp_path: Path) -> Iterator[str]:
    registry = DatasetRegistry([labelled_dataset(tmp_path / "labelled")])
    server = create_server(registry, ServerConfig(fsync=False)).start()
    yield f"127.0.0.1:{server.port}"
    server.stop(grace=0)


@pytest.mark.parametrize("pairwise", [False, True], ids=["losses", "pairwise"])
def test_the_example_trains_on_jest_batches_after_its_first_reports(
    address: str, pairwise: bool
) -> None:
    example = load_example()
    arguments = ["--target", address, "--dataset", "labelled", "--steps", "30"]
    summary = example.main(arguments + (["--pairwise"] if pairwise else []))
    assert len(summary.losses) == 30
    # the server selects up to max_in_flight (2) batches before the first report arrives
    warm_up = summary.served_by.index("jest")
    assert warm_up <= 3 and set(summary.served_by[warm_up:]) == {"jest"}
    assert np.mean(summary.losses[-10:]) < 0.85 * np.mean(summary.losses[:5])
