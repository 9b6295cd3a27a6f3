"""Curated datasets in an object store (or on HDFS): a local copy to serve and report from.

A dataset directory on a store is a dataset only once its ``manifest.json`` is there (the
pipeline publishes it last); without one it is treated as absent. Serving memory-maps
Arrow files and the report scans Parquet shards, so both work on a local copy: it lives in
a cache directory named after the URL and is reused while the store's manifest is
unchanged (a republished dataset is copied again).
"""

from __future__ import annotations

import os
from pathlib import Path

from batchcraft.dataset import layout
from batchcraft.errors import DatasetError
from batchcraft.storage import StorageOptions, resolve, write_bytes
from batchcraft.storage.copies import cache_name, local_copy


def default_cache_root() -> Path:
    """``$XDG_CACHE_HOME/batchcraft/datasets`` (``~/.cache`` without the variable)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "batchcraft" / "datasets"


def local_dataset(
    given: str | os.PathLike[str],
    options: StorageOptions | None = None,
    cache_root: Path | None = None,
) -> Path:
    """The local directory of a dataset: ``given`` itself when it is local, else a copy of it.

    Raises:
        DatasetError: the store holds no manifest there (no dataset, or one being published).
        StorageError: the store cannot be reached.
    """
    location = resolve(str(given), options)
    if location.is_local:
        return Path(location.path)
    copy = (cache_root or default_cache_root()) / cache_name(location)
    try:
        return local_copy(location, layout.MANIFEST, copy)
    except FileNotFoundError:
        raise DatasetError(
            f"{location.url} is not a curated dataset: it holds no {layout.MANIFEST} (none "
            "was written there, or a run is publishing one: its manifest comes last)"
        ) from None


def upload_files(paths: list[Path], given: str, options: StorageOptions | None = None) -> None:
    """Put local files (a report) into the dataset directory ``given`` on its store."""
    location = resolve(given, options)
    for path in paths:
        write_bytes(location.join(path.name), path.read_bytes())
