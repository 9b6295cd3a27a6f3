"""Helpers of the MinHash tests: pairs of texts planted at an exact Jaccard, the Jaccard of
two texts by plain Python sets, and single-machine union-find to check Spark against."""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np

NGRAM = 5
# (words, replaced words) whose 5-gram shingle sets have exactly this Jaccard: a text of
# N distinct words has N - 4 shingles, and each replaced word (at least 5 words from the
# others and from the ends) swaps 5 of them: J = (N - 4 - 5k) / (N - 4 + 5k).
PLANTED_SHAPES = {
    0.9: [(99, 1)],
    0.8: [(49, 1), (94, 2)],
    0.7: [(89, 3)],
    0.5: [(64, 4), (94, 6)],
}


def planted_pair(rng: np.random.Generator, jaccard: float, number: int) -> tuple[str, str]:
    """Two texts whose word 5-gram shingle sets have exactly ``jaccard`` (0.9 0.8 0.7 0.5).

    Words are drawn without replacement from a vocabulary far larger than a text, so no
    5-gram repeats; the replacements are words no other text has (``edit<number>x<i>``).
    """
    length, edits = PLANTED_SHAPES[jaccard][number % len(PLANTED_SHAPES[jaccard])]
    words = [f"w{i}" for i in rng.choice(200_000, size=length, replace=False)]
    slots = np.arange(4, length - 4, 5)  # interior positions 5 apart
    edited = list(words)
    for index, position in enumerate(sorted(rng.choice(slots, size=edits, replace=False))):
        edited[position] = f"edit{number}x{index}"
    return " ".join(words), " ".join(edited)


def shingles(text: str, ngram: int = NGRAM) -> set[tuple[str, ...]]:
    """The word n-grams of a text as plain Python tuples (the reference for the hashes)."""
    words = [w for w in re.split(r"[^\w]+|_", text.lower()) if w]
    if len(words) < ngram:
        return {tuple(words)} if words else set()
    return {tuple(words[i : i + ngram]) for i in range(len(words) - ngram + 1)}


def jaccard(left: str, right: str) -> float:
    a, b = shingles(left), shingles(right)
    return len(a & b) / len(a | b) if a | b else 0.0


def union_find(edges: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Every node's component, named by its smallest node, on one machine."""
    parent: dict[str, str] = {}

    def root(node: str) -> str:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for left, right in edges:
        a, b = root(left), root(right)
        if a != b:
            parent[max(a, b)] = min(a, b)
    return {node: root(node) for node in parent}
