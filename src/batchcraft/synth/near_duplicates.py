"""Texts planted at a known Jaccard similarity of their word 5-gram shingles, for the
MinHash tests and benchmark.

A text of N distinct words has N - 4 shingles of 5 words. Replacing k of its words, each
at least 5 words from the others and from both ends, by words no other text has swaps
5k shingles: the two texts have Jaccard (N - 4 - 5k) / (N - 4 + 5k). `PLANTED_SHAPES`
lists the (N, k) that give exactly 0.9, 0.8, 0.7 and 0.5.

Words are letters only: a normaliser that maps digits to 0 (datatrove's does) reads the
same words batchcraft does, so both see the same shingles.
"""

from __future__ import annotations

import functools
import string

import numpy as np

NGRAM_SIZE = 5
VOCABULARY_SIZE = 200_000
"""Words the texts draw from: two unrelated texts of 100 words almost never share a 5-gram."""
PLANTED_SHAPES: dict[float, list[tuple[int, int]]] = {
    0.9: [(99, 1)],
    0.8: [(49, 1), (94, 2)],
    0.7: [(89, 3)],
    0.5: [(64, 4), (94, 6)],
}
"""Jaccard -> (words, replaced words) that give it exactly (see the module docstring)."""
_EDIT_LETTERS = 6  # edit words are longer than vocabulary words: never one of them


def letter_word(index: int, length: int) -> str:
    """The ``index``-th word of ``length`` lowercase letters (base 26)."""
    letters = []
    for _ in range(length):
        index, digit = divmod(index, 26)
        letters.append(string.ascii_lowercase[digit])
    return "".join(reversed(letters))


@functools.lru_cache(maxsize=1)
def vocabulary() -> tuple[str, ...]:
    """`VOCABULARY_SIZE` distinct words of four letters."""
    return tuple(letter_word(index, 4) for index in range(VOCABULARY_SIZE))


def random_text(rng: np.random.Generator, num_words: int) -> str:
    """``num_words`` distinct words drawn from the vocabulary."""
    if not 0 <= num_words <= VOCABULARY_SIZE:
        raise ValueError(f"{num_words=} must be in [0, {VOCABULARY_SIZE}]")
    # Drawn with replacement, repeats dropped: choice(replace=False) would permute the
    # whole vocabulary for every text.
    drawn = np.zeros(0, dtype=np.int64)
    while len(drawn) < num_words:
        candidates = np.concatenate([drawn, rng.integers(0, VOCABULARY_SIZE, num_words + 8)])
        _, first = np.unique(candidates, return_index=True)
        drawn = candidates[np.sort(first)]
    words = vocabulary()
    return " ".join(words[i] for i in drawn[:num_words])


def planted_pair(rng: np.random.Generator, jaccard: float, number: int) -> tuple[str, str]:
    """Two texts whose word 5-gram shingle sets have exactly ``jaccard``.

    Args:
        rng: Draws the words and the edited positions.
        jaccard: One of the keys of `PLANTED_SHAPES` (0.9, 0.8, 0.7, 0.5).
        number: The pair's number: picks its shape among those of ``jaccard`` and makes
            its replacement words its own (no two pairs with distinct numbers share one).
    """
    shapes = PLANTED_SHAPES[jaccard]
    length, edits = shapes[number % len(shapes)]
    words = random_text(rng, length).split(" ")
    slots = np.arange(NGRAM_SIZE - 1, length - NGRAM_SIZE + 1, NGRAM_SIZE)
    edited = list(words)
    for index, position in enumerate(sorted(rng.choice(slots, size=edits, replace=False))):
        edited[position] = letter_word(number * 8 + index, _EDIT_LETTERS)
    return " ".join(words), " ".join(edited)
