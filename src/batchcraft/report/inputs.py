"""What every report section may read: the dataset's manifest, shards and centroids, and
the batch service's provenance log, all opened through `batchcraft.dataset`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from batchcraft.dataset import layout, schema
from batchcraft.dataset.manifest import list_rejects, list_shards, load_centroids, read_manifest
from batchcraft.errors import DatasetError
from batchcraft.report.provenance import ProvenanceLog, read_provenance

MANIFEST_KEYS = ("num_rows", "num_kept", "counts")  # what the funnel reconciles against
DEFAULT_PROVENANCE_DIR = "provenance"  # DIR/provenance, read when no log is given


@dataclass(frozen=True)
class ReportInputs:
    """The opened dataset a report is computed from.

    Attributes:
        directory: The curated dataset directory.
        manifest: Its manifest.json.
        shards: Paths of its data shards, in order.
        centroids: The centroid matrix, or None when centroids.npy is missing.
        num_clusters: Number of k-means clusters (rows of the centroids, else the manifest's).
        provenance: The batch service's provenance log, or None without one.
    """

    directory: Path
    manifest: dict[str, Any]
    shards: list[Path]
    centroids: np.ndarray | None
    num_clusters: int
    provenance: ProvenanceLog | None

    @property
    def text_columns(self) -> list[str]:
        """The columns that show a row to a reader (text, source, and the paired text)."""
        paired = [schema.PAIR_TEXT] if self.manifest.get("has_pairs") else []
        return [schema.TEXT, schema.SOURCE, *paired]

    def rejects(self) -> list[Path]:
        """The dataset's reject files, sorted."""
        return list_rejects(self.directory)


def open_inputs(dataset_dir: Path, provenance_dir: Path | None = None) -> ReportInputs:
    """Read the manifest, list the shards, load the centroids and read the provenance log.

    Args:
        dataset_dir: The curated dataset.
        provenance_dir: The provenance log; defaults to ``dataset_dir/provenance`` when
            that exists (no log otherwise).

    Raises:
        DatasetError: The dataset (or an explicitly given provenance log) is missing or
            violates the contract in a way the report cannot work around.
    """
    manifest = read_manifest(dataset_dir, required=MANIFEST_KEYS)
    shards = _shards(dataset_dir, manifest)
    centroids = load_centroids(dataset_dir)
    return ReportInputs(
        directory=dataset_dir,
        manifest=manifest,
        shards=shards,
        centroids=centroids,
        num_clusters=_num_clusters(manifest, centroids),
        provenance=_provenance(dataset_dir, provenance_dir),
    )


def _shards(dataset_dir: Path, manifest: dict[str, Any]) -> list[Path]:
    data_dir = layout.data_dir(dataset_dir)
    if not data_dir.is_dir():
        raise DatasetError(f"{data_dir} not found: a curated dataset keeps its rows there")
    return [shard.path for shard in list_shards(dataset_dir, manifest)]


def _num_clusters(manifest: dict[str, Any], centroids: np.ndarray | None) -> int:
    if centroids is not None:
        return int(centroids.shape[0])
    recorded = (manifest.get("clustering") or {}).get("num_clusters")
    if not isinstance(recorded, int) or recorded < 0:
        raise DatasetError("centroids.npy is missing and manifest clustering.num_clusters is unset")
    return recorded


def _provenance(dataset_dir: Path, provenance_dir: Path | None) -> ProvenanceLog | None:
    if provenance_dir is None:
        return read_provenance(dataset_dir / DEFAULT_PROVENANCE_DIR)
    log = read_provenance(provenance_dir)
    if log is None:
        raise DatasetError(f"no provenance log (*.jsonl files) under {provenance_dir}")
    return log
