"""Local copies of directories published on a store, reused while they are unchanged.

Serving memory-maps and scans local files, so what `batchcraft serve` reads from a store
(a curated dataset, an epoch plan) is copied whole into a local cache first. Such a
directory is published with one *marker* file written last (a dataset's manifest, a
plan's ``plan.json``): a directory without it is absent, and a copy is current while its
marker's bytes equal the store's.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import pyarrow.fs as pafs

from batchcraft.errors import StorageError
from batchcraft.storage.files import read_bytes
from batchcraft.storage.locations import Location


def cache_name(location: Location) -> str:
    """The name of ``location``'s copy in a cache directory: a hash of its URL."""
    return hashlib.sha256(location.url.encode()).hexdigest()[:16]


def local_copy(location: Location, marker: str, copy: Path) -> Path:
    """``copy``, holding the directory published at ``location``: the existing copy while
    its ``marker`` equals the store's, else a fresh one (replaced whole).

    Raises:
        FileNotFoundError: the store holds no ``marker`` there (nothing published).
        StorageError: the store cannot be read, or ``location`` was republished while
            being copied (a copy would mix two versions).
    """
    published = read_bytes(location.join(marker))
    held = copy / marker
    if held.is_file() and held.read_bytes() == published:
        return copy
    copy.parent.mkdir(parents=True, exist_ok=True)
    incoming = Path(tempfile.mkdtemp(dir=copy.parent, prefix=f".{copy.name}."))
    try:
        pafs.copy_files(
            location.path,
            str(incoming),
            source_filesystem=location.filesystem,
            destination_filesystem=pafs.LocalFileSystem(),
        )
        if (incoming / marker).read_bytes() != published:
            raise StorageError(f"{location.url} was republished while being copied: try again")
        shutil.rmtree(copy, ignore_errors=True)
        os.replace(incoming, copy)
    except OSError as error:
        raise StorageError(f"cannot copy {location.url}: {error}") from None
    finally:
        shutil.rmtree(incoming, ignore_errors=True)
    return copy
