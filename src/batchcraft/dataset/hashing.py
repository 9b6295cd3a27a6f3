"""The one 64-bit mixing function the dataset's hashes share (ids, shingles, report ids)."""

from __future__ import annotations

import numpy as np


def mix64(values: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, on a copy: every input bit flips about half the output
    bits, so hashes whose inputs share bits (FNV of similar ids, n-grams that share
    words) are unrelated, and their low bits sort well."""
    mixed = values.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):  # the arithmetic is modulo 2**64 by design
        mixed ^= mixed >> np.uint64(30)
        mixed *= np.uint64(0xBF58476D1CE4E5B9)
        mixed ^= mixed >> np.uint64(27)
        mixed *= np.uint64(0x94D049BB133111EB)
        mixed ^= mixed >> np.uint64(31)
    return mixed
