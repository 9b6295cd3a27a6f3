"""Fixtures shared across test folders.

Every test session caches served datasets in a directory of its own, never in ~/.cache
(a server started without --cache-dir maps its rows from the default directory).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from s3_server import S3Server, running_s3_server


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3-compatible server on a free loopback port, for the whole session."""
    with running_s3_server() as server:
        yield server


@pytest.fixture(scope="session", autouse=True)
def dataset_cache_dir() -> Iterator[None]:
    with tempfile.TemporaryDirectory(prefix="batchcraft-cache-") as directory:
        previous = os.environ.get("BATCHCRAFT_CACHE_DIR")
        os.environ["BATCHCRAFT_CACHE_DIR"] = directory
        yield
        if previous is None:
            del os.environ["BATCHCRAFT_CACHE_DIR"]
        else:
            os.environ["BATCHCRAFT_CACHE_DIR"] = previous


@pytest.fixture(scope="session")
def dataset_parts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two curated directories to serve as one dataset: 60 rows (48 kept, ids ``row-*``)
    and a delta of 25 (19 kept, ids ``new-*``)."""
    from batchcraft.synth.curated import write_curated_dataset

    root = tmp_path_factory.mktemp("parts")
    prev = write_curated_dataset(root / "prev", num_rows=60, duplicate_every=5, seed=1)
    delta = write_curated_dataset(
        root / "delta", num_rows=25, duplicate_every=4, seed=2, id_prefix="new"
    )
    return prev, delta
