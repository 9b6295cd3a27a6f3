"""Reading and writing ``manifest.json``, listing shards, rejects and centroids.

One reader with one set of rules for everyone: the manifest must be a JSON
object of a supported ``schema_version``; its ``shards`` list, when present,
names the data files in serving order (each entry ``{"path", "num_rows",
"num_kept"}``); without it the shards are ``data/part-*.parquet`` in sorted
order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from batchcraft._files import jsonable
from batchcraft.dataset import layout
from batchcraft.dataset.schema import SUPPORTED_SCHEMA_VERSIONS, similarity_threshold
from batchcraft.errors import DatasetError


@dataclass(frozen=True)
class Shard:
    """One Parquet file of a dataset and its row counts (-1 where the manifest is silent)."""

    path: Path
    num_rows: int = -1
    num_kept: int = -1


@dataclass(frozen=True)
class DedupSettings:
    """The semantic-dedup parameters a manifest records.

    Attributes:
        eps: rows at cosine similarity >= 1 - eps are duplicates.
        threshold: the cosine threshold (1 - eps) the pipeline applied.
        near_threshold: duplicates at or above this similarity are labelled ``near``.
        keep_policy: which member of a duplicate group the pipeline kept.
    """

    eps: float
    threshold: float
    near_threshold: float | None
    keep_policy: str


def read_manifest(root: Path, required: Sequence[str] = ()) -> dict[str, Any]:
    """Load and check ``root/manifest.json``.

    Args:
        root: the dataset directory.
        required: top-level keys the caller relies on (beyond ``schema_version``).

    Raises:
        DatasetError: the directory or manifest is missing or unreadable, not a
            JSON object, of an unsupported schema version, or lacks a required key.
    """
    path = layout.manifest_path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset directory {root} does not exist")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(
            f"{path} not found: {root} is not a curated dataset (its manifest.json is missing; "
            "a run that did not finish leaves none)"
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"manifest {path} is not readable JSON: {exc}") from exc
    except OSError as exc:
        raise DatasetError(f"cannot read manifest {path}: {exc}") from exc
    if not isinstance(manifest, dict):
        raise DatasetError(
            f"manifest {path} must hold a JSON object, got {type(manifest).__name__}"
        )
    version = manifest.get("schema_version")
    if version not in SUPPORTED_SCHEMA_VERSIONS or isinstance(version, bool):
        raise DatasetError(
            f"manifest {path}: schema_version={version!r} is not supported "
            f"(supported: {list(SUPPORTED_SCHEMA_VERSIONS)})"
        )
    missing = [key for key in required if key not in manifest]
    if missing:
        raise DatasetError(f"manifest {path} lacks required keys {missing}")
    return manifest


def write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    """Write ``root/manifest.json`` (sorted keys: two identical runs differ only in timings)."""
    layout.manifest_path(root).write_text(manifest_text(manifest), encoding="utf-8")


def manifest_text(manifest: dict[str, Any]) -> str:
    """The text of ``manifest.json``, for writers that put it somewhere else than a path."""
    return json.dumps(jsonable(manifest), indent=2, sort_keys=True) + "\n"


def list_shards(root: Path, manifest: dict[str, Any]) -> list[Shard]:
    """The shards named by the manifest, else ``data/part-*.parquet`` in sorted order.

    Raises:
        DatasetError: a shard entry of the manifest is malformed.
    """
    listed = manifest.get("shards")
    if listed is None:
        return [Shard(path) for path in sorted(layout.data_dir(root).glob(layout.SHARD_GLOB))]
    if not isinstance(listed, list):
        raise DatasetError(f"manifest {layout.manifest_path(root)}: shards must be a list")
    shards = []
    for entry in listed:
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise DatasetError(f"manifest {layout.manifest_path(root)}: bad shard entry {entry!r}")
        try:
            counts = int(entry.get("num_rows", -1)), int(entry.get("num_kept", -1))
        except (TypeError, ValueError):
            raise DatasetError(
                f"manifest {layout.manifest_path(root)}: bad shard entry {entry!r}"
            ) from None
        shards.append(Shard(root / entry["path"], *counts))
    return shards


def list_rejects(root: Path) -> list[Path]:
    """The dataset's reject files, sorted (none when ``rejects/`` is absent)."""
    return sorted(layout.rejects_dir(root).glob("*.parquet"))


def load_centroids(root: Path) -> np.ndarray | None:
    """The (num_clusters, dim) centroid matrix (float64), or None without ``centroids.npy``.

    Raises:
        DatasetError: the file exists but is not a readable 2-D array.
    """
    path = layout.centroids_path(root)
    if not path.is_file():
        return None
    try:
        centroids = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path} is not a readable .npy array: {exc}") from exc
    if centroids.ndim != 2:
        raise DatasetError(f"{path} must be 2-D (num_clusters, dim), got shape {centroids.shape}")
    return np.asarray(centroids, dtype=np.float64)


def dedup_settings(manifest: dict[str, Any]) -> DedupSettings:
    """The semantic-dedup settings recorded in ``manifest`` (the threshold derived from eps
    when only eps is recorded, and the other way round)."""
    section = manifest.get("semantic_dedup") or {}
    recorded_eps, recorded_threshold = section.get("eps"), section.get("threshold")
    if recorded_threshold is not None:
        threshold = float(recorded_threshold)
        eps = float(recorded_eps) if recorded_eps is not None else 1.0 - threshold
    elif recorded_eps is not None:
        eps = float(recorded_eps)
        threshold = similarity_threshold(eps)
    else:
        raise DatasetError("manifest.semantic_dedup must record eps or threshold")
    near = section.get("near_threshold")
    return DedupSettings(
        eps=eps,
        threshold=threshold,
        near_threshold=None if near is None else float(near),
        keep_policy=str(section.get("keep_policy", "unknown")),
    )
