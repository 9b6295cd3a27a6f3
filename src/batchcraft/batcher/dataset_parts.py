"""The directories one served dataset is made of, checked to be servable as one.

`batchcraft curate NEW --against PREV --out DELTA` writes only the rows NEW adds, so
the dataset a trainer wants is PREV's kept rows followed by DELTA's. Their rows share
one table and one position space; they must therefore share what a selector reads
across rows (the embedding model and dimension, pairs or not), and no directory may be
named twice (every row would be served twice).
"""

from __future__ import annotations

import functools
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchcraft.dataset import layout
from batchcraft.dataset.manifest import Shard, list_shards, read_manifest
from batchcraft.errors import DatasetError
from batchcraft.logs import log_event

LOG = logging.getLogger("batchcraft.batcher")


@dataclass(frozen=True)
class DatasetPart:
    """One curated directory of a served dataset."""

    root: Path
    manifest: dict[str, Any]
    shards: list[Shard]

    @functools.cached_property
    def digest(self) -> str:
        """SHA-256 of the manifest file: how a delta's manifest names its predecessors."""
        return hashlib.sha256(layout.manifest_path(self.root).read_bytes()).hexdigest()


def open_parts(roots: list[Path]) -> list[DatasetPart]:
    """Read the manifests and shard lists of ``roots`` (in order) and check them.

    Raises:
        DatasetError: a directory is no dataset, has no shards, is named twice, or
            differs from the first in embedding model, dimension or pairs.
    """
    if not roots:
        raise DatasetError("a dataset needs at least one curated directory")
    parts = []
    seen: dict[Path, Path] = {}
    for root in roots:
        resolved = root.resolve()
        if resolved in seen:
            raise DatasetError(f"dataset directory {root} is named twice")
        seen[resolved] = root
        manifest = read_manifest(root)
        shards = list_shards(root, manifest)
        if not shards:
            raise DatasetError(f"dataset {root} has no shards under {layout.data_dir(root)}")
        parts.append(DatasetPart(root, manifest, shards))
    for index, part in enumerate(parts[1:], start=1):
        _check_compatible(parts[0], part)
        _warn_unless_curated_against(parts[:index], part)
    return parts


def _warn_unless_curated_against(earlier: list[DatasetPart], part: DatasetPart) -> None:
    section = part.manifest.get("incremental") or {}
    known = {p.get("manifest_sha256") for p in section.get("predecessors", [])}
    for previous in earlier:  # each digest read once, however many parts follow
        if previous.digest not in known:
            log_event(LOG, logging.WARNING, "dataset_part_not_curated_against", part=str(part.root),
                      earlier=str(previous.root))  # fmt: skip


def _check_compatible(first: DatasetPart, other: DatasetPart) -> None:
    for what, value_of in (
        ("embedding model", lambda m: (m.get("embedding") or {}).get("model")),
        ("embedding dimension", lambda m: (m.get("embedding") or {}).get("dim")),
        ("pairs", lambda m: bool(m.get("has_pairs", False))),
    ):
        ours, theirs = value_of(first.manifest), value_of(other.manifest)
        if ours != theirs:
            raise DatasetError(
                f"dataset {other.root} cannot be served with {first.root}: {what} "
                f"{theirs!r} differs from {ours!r}"
            )
