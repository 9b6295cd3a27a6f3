"""Curated datasets in an object store (or on HDFS): a local copy to serve and report from.

A dataset directory on a store is a dataset only once its ``manifest.json`` is there (the
pipeline publishes it last); without one it is treated as absent. Serving memory-maps
Arrow files and the report scans Parquet shards, so both work on a local copy: it lives in
a cache directory named after the URL and is reused while the store's manifest is
unchanged (a republished dataset is copied again).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import pyarrow.fs as pafs

from batchcraft.dataset import layout
from batchcraft.errors import DatasetError, StorageError
from batchcraft.storage import Location, StorageOptions, read_bytes, resolve, write_bytes


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
    try:
        manifest = read_bytes(location.join(layout.MANIFEST))
    except FileNotFoundError:
        raise DatasetError(
            f"{location.url} is not a curated dataset: it holds no {layout.MANIFEST} (none "
            "was written there, or a run is publishing one: its manifest comes last)"
        ) from None
    copy = (cache_root or default_cache_root()) / hashlib.sha256(location.url.encode()).hexdigest()[
        :16
    ]
    held = copy / layout.MANIFEST
    if held.is_file() and held.read_bytes() == manifest:
        return copy
    _copy_published(location, manifest, copy)
    return copy


def _copy_published(location: Location, manifest: bytes, copy: Path) -> None:
    """Copy the dataset at ``location`` into ``copy`` (replaced whole), checking that the
    manifest did not change meanwhile (a publish in between would mix two datasets)."""
    copy.parent.mkdir(parents=True, exist_ok=True)
    incoming = Path(tempfile.mkdtemp(dir=copy.parent, prefix=f".{copy.name}."))
    try:
        pafs.copy_files(
            location.path,
            str(incoming),
            source_filesystem=location.filesystem,
            destination_filesystem=pafs.LocalFileSystem(),
        )
        if (incoming / layout.MANIFEST).read_bytes() != manifest:
            raise DatasetError(f"{location.url} was republished while being copied: try again")
        shutil.rmtree(copy, ignore_errors=True)
        os.replace(incoming, copy)
    except OSError as error:
        raise StorageError(f"cannot copy {location.url}: {error}") from None
    finally:
        shutil.rmtree(incoming, ignore_errors=True)


def upload_files(paths: list[Path], given: str, options: StorageOptions | None = None) -> None:
    """Put local files (a report) into the dataset directory ``given`` on its store."""
    location = resolve(given, options)
    for path in paths:
        write_bytes(location.join(path.name), path.read_bytes())
