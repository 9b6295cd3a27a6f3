"""Epoch plans on an object store: a local copy to serve from.

A plan on a store (``batchcraft plan … --out s3://…``) is published by its ``plan.json``,
written last; `local_plan` copies it whole into a cache directory (beside the datasets'
copies, `batchcraft.dataset.remote`) and reuses the copy while ``plan.json`` is unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path

from batchcraft.batcher.plan_rows import PLAN_FILE
from batchcraft.dataset.remote import default_cache_root
from batchcraft.errors import ConfigError
from batchcraft.storage import StorageOptions, resolve
from batchcraft.storage.copies import cache_name, local_copy


def local_plan(
    given: str | os.PathLike[str],
    options: StorageOptions | None = None,
    cache_root: Path | None = None,
) -> Path:
    """The local directory of the plan ``given``: itself when local, else a copy of it.

    Raises:
        ConfigError: the store holds no ``plan.json`` there (no plan, or one being written).
        StorageError: the store cannot be reached.
    """
    location = resolve(str(given), options)
    if location.is_local:
        return Path(location.path)
    root = cache_root or default_cache_root().parent / "plans"
    try:
        return local_copy(location, PLAN_FILE, root / cache_name(location))
    except FileNotFoundError:
        raise ConfigError(
            f"{location.url} is no epoch plan: it has no {PLAN_FILE} (none was written, or "
            "a run is writing one: it comes last)"
        ) from None
