"""MinHash signatures of shingle sets and their LSH bands, and the bands × rows choice.

A MinHash signature holds, for each of ``num_perm`` random hash functions, the smallest
hash of a document's shingles; two documents agree on one of them with probability equal
to their Jaccard similarity J. The signature is cut into ``bands`` bands of ``rows``
values, and two documents become a candidate pair when any band is equal in both, with
probability ``1 - (1 - J**rows)**bands``: an S-curve in J. `choose_bands` places it for
a target threshold.

The hash functions are ``(a * x + b) mod 2**64 >> 32`` with odd ``a`` (multiply-add-shift,
vectorised in numpy) over the 64-bit shingle hashes, drawn from a seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from batchcraft.dataset.hashing import mix64
from batchcraft.errors import ConfigError
from batchcraft.pipeline.minhash.shingles import ShingleSets

MIN_DETECTION = 0.95
"""Least probability that a pair at the threshold becomes a candidate (`choose_bands`)."""
_BLOCK_VALUES = 1 << 16  # values hashed at once: 512 KB stay in cache (8x faster than 32 MB)
_KEY_SEED = np.uint64(0x13198A2E03707344)
_SHIFT = np.uint64(32)


@dataclass(frozen=True)
class LshBands:
    """How a MinHash signature is cut: ``bands`` bands of ``rows`` values each.

    Attributes:
        bands: Number of bands b; a pair is a candidate when any band matches.
        rows: Signature values per band r.
    """

    bands: int
    rows: int

    def __post_init__(self) -> None:
        if self.bands < 1 or self.rows < 1:
            raise ConfigError(f"bands={self.bands} and rows={self.rows} must be >= 1")

    @property
    def num_perm(self) -> int:
        """Signature values the bands use."""
        return self.bands * self.rows

    def detection_probability(self, jaccard: float | np.ndarray) -> float | np.ndarray:
        """Probability that a pair of Jaccard similarity ``jaccard`` becomes a candidate."""
        return 1.0 - (1.0 - np.asarray(jaccard, dtype=np.float64) ** self.rows) ** self.bands


def choose_bands(threshold: float, num_perm: int, min_detection: float = MIN_DETECTION) -> LshBands:
    """Bands × rows for a Jaccard ``threshold`` within a budget of ``num_perm`` values.

    The largest ``rows`` (the steepest S-curve, so the fewest candidates at low J) for
    which enough bands to detect a pair at the threshold with probability
    ``min_detection`` fit in the budget; then as many bands of that many rows as fit,
    which detects pairs at the threshold even more surely.

    Raises:
        ConfigError: ``num_perm`` is too small to reach ``min_detection`` at the threshold.
    """
    if not 0.0 < threshold < 1.0:
        raise ConfigError(f"threshold={threshold} must be in (0, 1)")
    chosen = None
    for rows in range(1, num_perm + 1):
        needed = math.ceil(math.log(1.0 - min_detection) / math.log1p(-(threshold**rows)))
        if needed * rows <= num_perm:
            chosen = LshBands(num_perm // rows, rows)
    if chosen is None:
        raise ConfigError(
            f"num_perm={num_perm} is too small to detect pairs at Jaccard {threshold} with "
            f"probability {min_detection}: give more permutations"
        )
    return chosen


class MinHasher:
    """``num_perm`` hash functions drawn from ``seed``; signatures of shingle sets."""

    def __init__(self, num_perm: int, seed: int = 0) -> None:
        if num_perm < 1:
            raise ConfigError(f"num_perm={num_perm} must be >= 1")
        rng = np.random.default_rng([seed, 0x4D494E48])  # PCG64: the same on every machine
        self.multipliers = rng.integers(0, 2**64, num_perm, dtype=np.uint64) | np.uint64(1)
        self.increments = rng.integers(0, 2**64, num_perm, dtype=np.uint64)

    @property
    def num_perm(self) -> int:
        return len(self.multipliers)

    def signatures(self, sets: ShingleSets) -> np.ndarray:
        """(documents, num_perm) uint32 signatures; a document without shingles has all
        values 2**32 - 1 (callers leave such documents out: `ShingleSets.sizes`)."""
        sizes = sets.sizes
        result = np.full((len(sizes), self.num_perm), np.iinfo(np.uint32).max, np.uint32)
        filled = np.flatnonzero(sizes > 0)
        if len(filled) == 0:
            return result
        # Blocks of whole documents of about _BLOCK_VALUES hashes in all (one long
        # document is a block of its own and leaves the others' blocks as they are).
        shingles_per_block = max(1, _BLOCK_VALUES // self.num_perm)
        ends = sets.offsets[filled + 1]
        start = 0
        while start < len(filled):
            low = sets.offsets[filled[start]]
            stop = int(np.searchsorted(ends, low + shingles_per_block, side="right"))
            docs = filled[start : max(stop, start + 1)]
            high = sets.offsets[docs[-1] + 1]
            hashed = (sets.hashes[low:high, None] * self.multipliers + self.increments) >> _SHIFT
            starts = sets.offsets[docs] - low
            result[docs] = np.minimum.reduceat(hashed, starts, axis=0).astype(np.uint32)
            start += len(docs)
        return result


def band_keys(signatures: np.ndarray, bands: LshBands) -> np.ndarray:
    """(documents, bands) int64 keys: equal keys in band k mean (up to a 64-bit hash
    collision, which verification catches) equal signature values in band k."""
    count = len(signatures)
    values = signatures[:, : bands.num_perm].astype(np.uint64).reshape(count, bands.bands, -1)
    keys = np.full((count, bands.bands), _KEY_SEED, dtype=np.uint64)
    for row in range(bands.rows):
        keys = mix64(keys ^ values[:, :, row])
    return keys.view(np.int64)
