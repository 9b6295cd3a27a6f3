"""The curated datasets a run is curated against (``curate NEW --against PREV``): what is
read of each before Spark starts, and every check that makes the comparison meaningful.

A predecessor is read from its manifest and centroids only (a few kilobytes, from any
store); its rows are read later by the executors (`incremental.stage`). A wrong PREV —
no manifest, another model or embedding dimension, pairs where the run has none, the
run's own ``--out`` — stops the run here, before Spark starts and before anything is
written.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from batchcraft.dataset import layout
from batchcraft.dataset.schema import SUPPORTED_SCHEMA_VERSIONS
from batchcraft.errors import InputError
from batchcraft.pipeline.config import CurateConfig
from batchcraft.pipeline.embedding.sentence_encoder import model_name
from batchcraft.storage import Location, read_bytes, resolve

PRECOMPUTED = "precomputed"


@dataclass(frozen=True)
class Predecessor:
    """One curated dataset the run is curated against.

    Attributes:
        url: Where it is, as the user gave it (resolved: a plain path when local).
        fingerprint: SHA-256 of its ``manifest.json`` (a republished PREV changes it).
        manifest: Its manifest.
        centroids: Its (k, d) float32 centroids.
        shards: The URLs of its row shards.
    """

    url: str
    fingerprint: str
    manifest: dict[str, Any]
    centroids: np.ndarray
    shards: tuple[str, ...]

    def record(self) -> dict[str, Any]:
        """What the new dataset's manifest says of this predecessor."""
        return {
            "path": self.url,
            "manifest_sha256": self.fingerprint,
            "num_rows": self.manifest.get("num_rows"),
            "num_kept": self.manifest.get("num_kept"),
        }


def open_predecessors(config: CurateConfig, model_path: str | None) -> list[Predecessor]:
    """Every ``config.against`` dataset, read and checked against the run's settings.

    Raises:
        InputError: a predecessor is the run's ``out``, has no manifest, or cannot be
            compared with the run (another model or dimension, pairs, centroids).
    """
    out = resolve(config.out, config.storage_options).url.rstrip("/")
    found = []
    for given in config.against:
        location = resolve(given, config.storage_options)
        if location.url.rstrip("/") == out:
            raise InputError(f"--against {given} is the run's own --out: curate into another one")
        found.append(_read(given, location))
    for predecessor in found:
        _check_comparable(predecessor, config, model_path)
    if not config.recluster and len({p.centroids.tobytes() for p in found}) > 1:
        raise InputError(
            "the --against datasets have different centroids: the new rows can take the "
            "clusters of one of them only; pass --recluster to refit k-means on the union"
        )
    return found


def _read(given: str, location: Location) -> Predecessor:
    try:
        text = read_bytes(location.join(layout.MANIFEST))
    except FileNotFoundError:
        raise InputError(
            f"--against {given} is not a curated dataset: it holds no {layout.MANIFEST}"
        ) from None
    try:
        manifest = json.loads(text)
        centroids = np.load(io.BytesIO(read_bytes(location.join(layout.CENTROIDS))))
    except FileNotFoundError:
        raise InputError(f"--against {given} holds no {layout.CENTROIDS}") from None
    except ValueError as error:
        raise InputError(f"--against {given}: unreadable manifest or centroids: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("schema_version") not in (
        SUPPORTED_SCHEMA_VERSIONS
    ):
        raise InputError(f"--against {given}: not a manifest of a supported schema version")
    shards = tuple(location.join(shard["path"]).url for shard in manifest.get("shards", []))
    fingerprint = hashlib.sha256(text).hexdigest()
    return Predecessor(location.url, fingerprint, manifest, centroids.astype(np.float32), shards)


def _check_comparable(
    predecessor: Predecessor, config: CurateConfig, model_path: str | None
) -> None:
    """Same encoder (name and dimension), same kind of rows (pairs or not)."""
    embedding = predecessor.manifest.get("embedding", {})
    model = PRECOMPUTED if config.embedding_column else model_name(config.model)
    theirs = embedding.get("model")
    if theirs != model:
        raise InputError(
            f"--against {predecessor.url} was embedded by {theirs!r}, this run by {model!r}: "
            "their similarities cannot be compared"
        )
    dimension = model_dimension(model_path)
    if dimension is not None and embedding.get("dim") != dimension:
        raise InputError(
            f"--against {predecessor.url} holds {embedding.get('dim')}-d embeddings, the "
            f"model {model!r} makes {dimension}-d ones"
        )
    if bool(predecessor.manifest.get("has_pairs")) != (config.pair_column is not None):
        raise InputError(
            f"--against {predecessor.url}: one of it and this run has a pair column and the "
            "other has none, so exact duplicates (text and pair) cannot match"
        )


def model_dimension(model_path: str | None) -> int | None:
    """The embedding dimension a sentence-transformers directory declares (its pooling
    layer's), without loading the model; None when it declares none (or is precomputed)."""
    if model_path is None:
        return None
    pooling = Path(model_path) / "1_Pooling" / "config.json"
    if not pooling.is_file():
        return None
    return int(json.loads(pooling.read_text()).get("word_embedding_dimension", 0)) or None


def check_dimension(predecessors: list[Predecessor], dimension: int) -> None:
    """Raise when the run's embeddings (known once embedded, for precomputed vectors) are
    not of the predecessors' dimension."""
    for predecessor in predecessors:
        theirs = predecessor.manifest.get("embedding", {}).get("dim")
        if theirs != dimension:
            raise InputError(
                f"--against {predecessor.url} holds {theirs}-d embeddings, this run's are "
                f"{dimension}-d: their similarities cannot be compared"
            )
