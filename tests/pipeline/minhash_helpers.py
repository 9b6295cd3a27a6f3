"""Helpers of the MinHash tests: the Jaccard of two texts by plain Python sets, and
single-machine union-find to check Spark against (texts planted at an exact Jaccard come
from `batchcraft.synth.near_duplicates`)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from batchcraft.synth.near_duplicates import NGRAM_SIZE


def shingles(text: str, ngram: int = NGRAM_SIZE) -> set[tuple[str, ...]]:
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


def record_jaccard(left: tuple[str, str | None], right: tuple[str, str | None]) -> float:
    """The Jaccard of two (text, pair text) records: a pair text's shingles count apart
    from the text's, as MinHash near dedup compares a record's text and pair together."""

    def record_shingles(text: str, pair: str | None) -> set[tuple[str, ...]]:
        return shingles(text) | {("<pair>", *s) for s in shingles(pair or "")}

    a, b = record_shingles(*left), record_shingles(*right)
    return len(a & b) / len(a | b) if a | b else 0.0
