"""Where a curated dataset keeps its files.

::

    DIR/manifest.json        written last: a directory without it is not a dataset
    DIR/data/part-NNNNN.parquet
    DIR/centroids.npy        (num_clusters, dim) float32, unit norm
    DIR/rejects/*.parquet    rows that failed validation, with their reason
    DIR/minhash/*.parquet    MinHash band keys of the kept rows (manifest ``minhash_keys``),
                             read by later ``curate --against DIR`` runs; not served
    DIR/report.html, DIR/report.json
"""

from __future__ import annotations

from pathlib import Path

MANIFEST = "manifest.json"
DATA_DIR = "data"
SHARD_GLOB = "part-*.parquet"
CENTROIDS = "centroids.npy"
REJECTS_DIR = "rejects"
MINHASH_KEYS_DIR = "minhash"
REPORT_HTML = "report.html"
REPORT_JSON = "report.json"


def shard_name(index: int) -> str:
    """The path of shard number ``index``, relative to the dataset directory."""
    return f"{DATA_DIR}/part-{index:05d}.parquet"


def manifest_path(root: Path) -> Path:
    """``root/manifest.json``."""
    return root / MANIFEST


def data_dir(root: Path) -> Path:
    """``root/data``: the row shards."""
    return root / DATA_DIR


def rejects_dir(root: Path) -> Path:
    """``root/rejects``: the rejected input records."""
    return root / REJECTS_DIR


def centroids_path(root: Path) -> Path:
    """``root/centroids.npy``."""
    return root / CENTROIDS
