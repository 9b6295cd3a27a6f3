"""Small file helpers shared by the pipeline, the batcher and the report."""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np


def atomic_write(path: Path, data: bytes, *, fsync: bool = True, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` so that readers never see a partial file.

    The bytes go to a temporary file in the same directory, which is renamed over ``path``.

    Args:
        path: Destination; its directory is created when missing.
        data: The whole content.
        fsync: Flush to disk before the rename (survives a machine crash, not just a process kill).
        mode: Permission bits to set (``mkstemp`` creates files readable by the owner only).
    """
    with atomic_output(path, fsync=fsync, mode=mode) as temporary, open(temporary, "wb") as file:
        file.write(data)


@contextlib.contextmanager
def atomic_output(path: Path, *, fsync: bool = True, mode: int | None = None) -> Iterator[Path]:
    """A temporary path beside ``path`` to write; renamed over ``path`` when the block
    succeeds, removed when it fails (see `atomic_write` for the arguments)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        if fsync:
            with open(temporary, "rb+") as file:
                os.fsync(file.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars/arrays as Python values and NaN/inf as null."""
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def json_default(value: Any) -> Any:
    """``json.dumps`` fallback: numpy scalars as Python values, anything else as its str."""
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


_PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")


def safe_file_name(name: str, *, keep_plain: bool = False) -> str:
    """A file name for ``name``, which may hold any character: a readable prefix of it
    plus a hash of it (distinct names never collide), or with ``keep_plain`` ``name``
    itself when it already is a plain file name."""
    readable = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:48]
    if keep_plain:
        if _PLAIN_NAME.fullmatch(name):
            return name
        readable = readable.lstrip(".") or "_"  # never a hidden file beside plain ones
    digest = hashlib.sha256(name.encode()).hexdigest()[:12]
    return f"{readable}-{digest}"
