"""Served rows are memory-mapped by default: from --cache-dir, else a per-user cache
directory; --no-cache-dir holds them on the heap."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from batchcraft.errors import OutputError
from batchcraft.service.cli import dataset_cache_dir
from batchcraft.service.serve_arguments import add_serve_arguments

pytestmark = pytest.mark.grpc


def parsed(*flags: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    return parser.parse_args(["data", *flags])


def test_the_default_cache_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCHCRAFT_CACHE_DIR", str(tmp_path / "explicit"))
    assert dataset_cache_dir(parsed()) == tmp_path / "explicit"
    monkeypatch.delenv("BATCHCRAFT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert dataset_cache_dir(parsed()) == tmp_path / "xdg" / "batchcraft" / "datasets"
    assert dataset_cache_dir(parsed("--cache-dir", str(tmp_path / "flag"))) == tmp_path / "flag"
    assert dataset_cache_dir(parsed("--no-cache-dir")) is None


def test_an_unwritable_cache_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    with pytest.raises(OutputError, match="--cache-dir"):
        dataset_cache_dir(parsed("--cache-dir", str(blocked / "cache")))
    monkeypatch.setenv("BATCHCRAFT_CACHE_DIR", str(blocked / "cache"))
    assert dataset_cache_dir(parsed()) is None  # the default: rows on the heap, logged


def test_a_server_maps_its_rows_by_default(
    curated_dir: Path, server_process, kept_ids: list[str]
) -> None:  # type: ignore[no-untyped-def]
    from batchcraft.service import BatchClient

    cache = Path(os.environ["BATCHCRAFT_CACHE_DIR"])  # tests/conftest.py's
    server = server_process(str(curated_dir), "--name", "news")
    maps = Path(f"/proc/{server.process.pid}/maps")
    if not maps.exists():
        pytest.skip("no /proc here to see the process's mappings")
    mapped = maps.read_text()
    assert any(str(path) in mapped for path in cache.glob("news-*.arrow"))
    with BatchClient(server.address, "news", batch_size=10, columns=["id"]) as client:
        served = [i for batch in client for i in batch["id"]]
    assert sorted(served) == sorted(kept_ids)
