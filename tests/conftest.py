"""Every test session caches served datasets in a directory of its own, never in ~/.cache
(a server started without --cache-dir maps its rows from the default directory)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest


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
