"""Reading a curated dataset's files: the manifest, the shard list and the centroids."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from batchcraft.errors import DatasetError

SUPPORTED_SCHEMA_VERSION = 1
REQUIRED_KEYS = ("schema_version", "num_rows", "num_kept", "counts")


@dataclass(frozen=True)
class DedupSettings:
    """The semantic-dedup parameters the report needs to draw thresholds.

    Attributes:
        eps: The chosen eps; rows at cosine similarity >= 1 - eps are duplicates.
        threshold: The cosine threshold (1 - eps) the pipeline applied.
        near_threshold: Duplicates at or above this similarity are labelled ``near``.
        keep_policy: Which member of a duplicate group the pipeline kept.
    """

    eps: float
    threshold: float
    near_threshold: float | None
    keep_policy: str


def load_manifest(dataset_dir: Path) -> dict[str, Any]:
    """Load and minimally validate ``dataset_dir/manifest.json``.

    Args:
        dataset_dir: The curated dataset directory.

    Returns:
        The manifest as a dictionary.

    Raises:
        DatasetError: The manifest is missing, unreadable, of another schema version,
            or lacks one of the keys the report relies on.
    """
    path = dataset_dir / "manifest.json"
    if not path.is_file():
        raise DatasetError(f"{path} not found: is {dataset_dir} a curated dataset directory?")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path} is not readable JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        raise DatasetError(f"{path} must hold a JSON object, got {type(manifest).__name__}")
    version = manifest.get("schema_version")
    if version != SUPPORTED_SCHEMA_VERSION:
        raise DatasetError(
            f"{path}: schema_version={version!r} is not supported "
            f"(this report reads version {SUPPORTED_SCHEMA_VERSION})"
        )
    missing = [key for key in REQUIRED_KEYS if key not in manifest]
    if missing:
        raise DatasetError(f"{path} lacks required keys {missing}")
    return manifest


def dedup_settings(manifest: dict[str, Any]) -> DedupSettings:
    """The semantic-dedup settings recorded in ``manifest`` (threshold derived from eps)."""
    section = manifest.get("semantic_dedup") or {}
    recorded_eps, recorded_threshold = section.get("eps"), section.get("threshold")
    if recorded_threshold is not None:
        threshold = float(recorded_threshold)
        eps = float(recorded_eps) if recorded_eps is not None else 1.0 - threshold
    elif recorded_eps is not None:
        eps = float(recorded_eps)
        threshold = 1.0 - eps
    else:
        raise DatasetError("manifest.semantic_dedup must record eps or threshold")
    near = section.get("near_threshold")
    return DedupSettings(
        eps=eps,
        threshold=threshold,
        near_threshold=None if near is None else float(near),
        keep_policy=str(section.get("keep_policy", "unknown")),
    )


def list_shards(dataset_dir: Path) -> list[Path]:
    """The dataset's data shards in a stable (sorted) order.

    Raises:
        DatasetError: ``dataset_dir/data`` does not exist.
    """
    data_dir = dataset_dir / "data"
    if not data_dir.is_dir():
        raise DatasetError(f"{data_dir} not found: a curated dataset keeps its rows there")
    return sorted(data_dir.glob("part-*.parquet"))


def list_rejects(dataset_dir: Path) -> list[Path]:
    """The dataset's reject files (none when the directory is absent)."""
    return sorted((dataset_dir / "rejects").glob("*.parquet"))


def load_centroids(dataset_dir: Path) -> np.ndarray | None:
    """The (num_clusters, dim) centroid matrix, or None when ``centroids.npy`` is absent.

    Raises:
        DatasetError: The file exists but is not a 2-D array.
    """
    path = dataset_dir / "centroids.npy"
    if not path.is_file():
        return None
    try:
        centroids = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path} is not a readable .npy array: {exc}") from exc
    if centroids.ndim != 2:
        raise DatasetError(f"{path} must be 2-D (num_clusters, dim), got shape {centroids.shape}")
    return np.asarray(centroids, dtype=np.float64)
