"""Synthetic embeddings for benchmarks too large to run a real model on (100k-1M rows).

Rows are unit vectors clustered around random unit centres (``centre + noise``,
normalised: a von Mises-Fisher-like blob per topic), and a share of them are planted
near duplicates ``cos * original + sin * u`` with ``u`` a unit vector orthogonal to the
original, so each planted pair has exactly the cosine recorded in the ground truth.
Generation works in chunks into one preallocated float32 array: no full-size temporaries.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from batchcraft.errors import ConfigError

_CHUNK_ROWS = 32_768


@dataclass(frozen=True)
class SynthEmbeddings:
    """Clustered unit vectors with planted near-duplicate pairs.

    Attributes:
        ids: Row ids, ``"emb-0000000"``, ``"emb-0000001"``...
        embeddings: ``(num_rows, dim)`` float32, unit norm.
        topics: ``(num_rows,)`` int32 cluster of each row.
        duplicate_pairs: ``(num_duplicates, 2)`` int64 rows ``(original, duplicate)``; each
            original is a distinct row that is not itself a duplicate.
        duplicate_cosines: ``(num_duplicates,)`` float32 cosine of each planted pair.
    """

    ids: list[str]
    embeddings: np.ndarray
    topics: np.ndarray
    duplicate_pairs: np.ndarray
    duplicate_cosines: np.ndarray


def synthetic_embeddings(
    num_rows: int,
    dim: int = 384,
    num_topics: int = 20,
    duplicate_fraction: float = 0.1,
    seed: int = 0,
    spread: tuple[float, float] = (0.8, 1.3),
    duplicate_cosine: tuple[float, float] = (0.95, 0.995),
) -> SynthEmbeddings:
    """Generates clustered unit vectors with planted near duplicates.

    Args:
        num_rows: Number of vectors.
        dim: Dimension of each vector.
        num_topics: Number of clusters (random unit centres).
        duplicate_fraction: Share of rows that are near duplicates of another row (< 0.5).
        seed: Seed of every random draw; equal arguments give equal arrays.
        spread: Range of each cluster's noise scale. A row's cosine to its centre is about
            ``1 / sqrt(1 + spread**2)`` and two rows of a cluster about ``1 / (1 + spread**2)``
            (0.5 for spread 1), far below the planted duplicates.
        duplicate_cosine: Range the cosine of each planted pair is drawn from.

    Returns:
        The vectors and the ground truth of the planted pairs.
    """
    _check_arguments(num_rows, dim, num_topics, duplicate_fraction, duplicate_cosine)
    rng = np.random.default_rng(seed)
    embeddings, topics = _clustered_rows(rng, num_rows, dim, num_topics, spread)
    pairs, cosines = _plant_duplicates(
        rng, embeddings, topics, duplicate_fraction, duplicate_cosine
    )
    return SynthEmbeddings(
        ids=[f"emb-{index:07d}" for index in range(num_rows)],
        embeddings=embeddings,
        topics=topics,
        duplicate_pairs=pairs,
        duplicate_cosines=cosines,
    )


def _check_arguments(
    num_rows: int,
    dim: int,
    num_topics: int,
    duplicate_fraction: float,
    duplicate_cosine: tuple[float, float],
) -> None:
    if num_rows < 2 or dim < 2 or num_topics < 1:
        raise ConfigError(f"{num_rows=} and {dim=} must be >= 2, {num_topics=} >= 1")
    if not 0.0 <= duplicate_fraction < 0.5:
        raise ConfigError(f"{duplicate_fraction=} must be in [0, 0.5)")
    if not -1.0 <= duplicate_cosine[0] <= duplicate_cosine[1] <= 1.0:
        raise ConfigError(f"{duplicate_cosine=} must be an increasing range within [-1, 1]")


def _clustered_rows(
    rng: np.random.Generator, num_rows: int, dim: int, num_topics: int, spread: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Unit rows around random unit centres, and each row's topic (its centre)."""
    centres = _unit_rows(rng.standard_normal((num_topics, dim), dtype=np.float32))
    scales = rng.uniform(*spread, size=num_topics).astype(np.float32)
    topics = rng.integers(0, num_topics, size=num_rows, dtype=np.int32)
    embeddings = np.empty((num_rows, dim), dtype=np.float32)
    for start in range(0, num_rows, _CHUNK_ROWS):
        chunk = slice(start, min(start + _CHUNK_ROWS, num_rows))
        noise = rng.standard_normal((chunk.stop - chunk.start, dim), dtype=np.float32)
        noise *= (scales[topics[chunk]] / np.sqrt(dim, dtype=np.float32))[:, None]
        noise += centres[topics[chunk]]
        embeddings[chunk] = _unit_rows(noise)
    return embeddings, topics


def _plant_duplicates(
    rng: np.random.Generator,
    embeddings: np.ndarray,
    topics: np.ndarray,
    duplicate_fraction: float,
    duplicate_cosine: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray]:
    """Overwrites random rows with near copies of other rows, in place; returns the pairs."""
    num_rows = len(embeddings)
    num_duplicates = round(duplicate_fraction * num_rows)
    shuffled = rng.permutation(num_rows)
    duplicates = np.sort(shuffled[:num_duplicates])
    originals = shuffled[num_duplicates : 2 * num_duplicates]
    cosines = rng.uniform(*duplicate_cosine, size=num_duplicates).astype(np.float32)
    for start in range(0, num_duplicates, _CHUNK_ROWS):
        part = slice(start, start + _CHUNK_ROWS)
        embeddings[duplicates[part]] = _near_copies(rng, embeddings[originals[part]], cosines[part])
        topics[duplicates[part]] = topics[originals[part]]
    actual = np.einsum("ij,ij->i", embeddings[originals], embeddings[duplicates])
    return np.stack([originals, duplicates], axis=1).astype(np.int64), actual.astype(np.float32)


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix


def _near_copies(
    rng: np.random.Generator, originals: np.ndarray, cosines: np.ndarray
) -> np.ndarray:
    """Unit vectors at exactly ``cosines`` from the (unit) ``originals``."""
    directions = rng.standard_normal(originals.shape, dtype=np.float32)
    directions -= np.einsum("ij,ij->i", directions, originals)[:, None] * originals
    directions = _unit_rows(directions)
    sines = np.sqrt(1.0 - cosines.astype(np.float64) ** 2).astype(np.float32)
    return _unit_rows(cosines[:, None] * originals + sines[:, None] * directions)


def write_embeddings_parquet(
    data: SynthEmbeddings, out_dir: str | Path, num_files: int = 4, row_group_rows: int = 65_536
) -> list[Path]:
    """Writes ``id``, ``text`` and ``embedding`` (fixed_size_list<float32>[dim]) as Parquet.

    Rows are split into ``num_files`` contiguous files ``part-00000.parquet``...; each
    file is written one row group at a time, so memory stays at one row group beyond
    the embeddings themselves.

    Returns:
        The paths written, in row order.
    """
    if num_files < 1 or row_group_rows < 1:
        raise ConfigError(f"{num_files=} and {row_group_rows=} must be >= 1")
    num_rows, dim = data.embeddings.shape
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    schema = pa.schema(
        [("id", pa.string()), ("text", pa.string()), ("embedding", pa.list_(pa.float32(), dim))]
    )
    bounds = np.linspace(0, num_rows, num_files + 1).round().astype(int)
    paths = []
    for number, (first, last) in enumerate(itertools.pairwise(bounds)):
        path = root / f"part-{number:05d}.parquet"
        with pq.ParquetWriter(path, schema) as writer:
            for start in range(first, last, row_group_rows):
                stop = min(start + row_group_rows, last)
                values = pa.array(data.embeddings[start:stop].reshape(-1))  # zero-copy view
                table = pa.table(
                    {
                        "id": data.ids[start:stop],
                        "text": [f"row {index}" for index in range(start, stop)],
                        "embedding": pa.FixedSizeListArray.from_arrays(values, dim),
                    },
                    schema=schema,
                )
                writer.write_table(table)
        paths.append(path)
    return paths
