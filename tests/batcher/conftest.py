"""Fixtures of the batcher tests: small curated datasets following the DESIGN.md contract."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchcraft.batcher.served_dataset import CuratedDataset
from batchcraft.synth.curated import write_curated_dataset


@pytest.fixture(scope="session")
def curated_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """103 rows in 3 shards, every 5th a removed duplicate (83 kept)."""
    root = tmp_path_factory.mktemp("curated")
    return write_curated_dataset(root, num_rows=103, num_shards=3, duplicate_every=5, dim=8)


@pytest.fixture(scope="session")
def dataset(curated_dir: Path) -> CuratedDataset:
    """The kept rows of ``curated_dir``, registered as ``news``."""
    return CuratedDataset.open(curated_dir, "news")
