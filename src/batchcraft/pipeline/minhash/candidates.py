"""Candidate pairs from LSH buckets, and their true Jaccard similarity.

Documents whose signatures agree on a band share a bucket. A bucket of a few documents
yields all its pairs. Templated pages (boilerplate, cookie walls, generated listings) can
fill one bucket with thousands of documents, and all its pairs would be quadratic in its
size: in a bucket of more than `MAX_PAIRWISE_BUCKET` documents, each document is paired
only with the bucket's first `BUCKET_CENTERS` (by id), so the pairs grow linearly.

LSH only proposes: every candidate is verified on the two documents' shingle sets
(`pair_jaccard`), so no pair below the threshold is ever merged, whatever the bands.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from batchcraft.pipeline.minhash.shingles import ShingleSets

MAX_PAIRWISE_BUCKET = 64
"""Largest bucket whose documents are all compared with each other (2,016 pairs)."""
BUCKET_CENTERS = 16
"""In a larger bucket, each document is compared with this many of the bucket's
documents (the smallest ids) instead of all of them."""
PAIRS_PER_BATCH = 65_536


def bucket_pair_indices(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions (left < right) of the pairs compared in a bucket of ``size`` documents
    sorted by id: all pairs up to `MAX_PAIRWISE_BUCKET`, else every pair that involves one
    of the first `BUCKET_CENTERS`."""
    if size <= MAX_PAIRWISE_BUCKET:
        left, right = np.triu_indices(size, 1)
        return left.astype(np.int64), right.astype(np.int64)
    centers = np.arange(BUCKET_CENTERS, dtype=np.int64)
    among_left, among_right = np.triu_indices(BUCKET_CENTERS, 1)
    others = np.arange(BUCKET_CENTERS, size, dtype=np.int64)
    left = np.concatenate([among_left, np.tile(centers, len(others))])
    right = np.concatenate([among_right, np.repeat(others, BUCKET_CENTERS)])
    return left, right


def bucket_pairs(buckets: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Candidate pairs ``(u, v)``, ``u < v``, of buckets given as a ``members`` list of
    ids per row; yields batches of at most `PAIRS_PER_BATCH` pairs (a huge bucket streams)."""
    lefts: list[pa.Array] = []
    rights: list[pa.Array] = []
    pending = 0
    for batch in buckets:
        for members in batch.column("members"):
            ids = pa.array(sorted(members.values.to_pylist()), pa.string())
            left, right = bucket_pair_indices(len(ids))
            for start in range(0, len(left), PAIRS_PER_BATCH):
                lefts.append(ids.take(left[start : start + PAIRS_PER_BATCH]))
                rights.append(ids.take(right[start : start + PAIRS_PER_BATCH]))
                pending += len(lefts[-1])
                if pending >= PAIRS_PER_BATCH:
                    yield _pairs_batch(lefts, rights)
                    lefts, rights, pending = [], [], 0
    if pending:
        yield _pairs_batch(lefts, rights)


def _pairs_batch(lefts: list[pa.Array], rights: list[pa.Array]) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(
        [pa.concat_arrays(lefts), pa.concat_arrays(rights)], names=["u", "v"]
    )


def pair_jaccard(left: ShingleSets, right: ShingleSets) -> np.ndarray:
    """Jaccard similarity of document i of ``left`` and document i of ``right``, exactly,
    as float64 (0 when both are empty).

    Vectorised over all pairs: every shingle is tagged with its pair, and after one sort
    a shingle both sets hold sits next to its twin (each set holds it at most once).
    """
    count = len(left.sizes)
    pair_of = np.concatenate(
        [np.repeat(np.arange(count), left.sizes), np.repeat(np.arange(count), right.sizes)]
    )
    hashes = np.concatenate([left.hashes, right.hashes])
    order = np.lexsort((hashes, pair_of))
    pair_of, hashes = pair_of[order], hashes[order]
    shared = (pair_of[1:] == pair_of[:-1]) & (hashes[1:] == hashes[:-1])
    intersection = np.bincount(pair_of[1:][shared], minlength=count)
    union = left.sizes + right.sizes - intersection
    return np.divide(intersection, union, out=np.zeros(count, dtype=np.float64), where=union > 0)
