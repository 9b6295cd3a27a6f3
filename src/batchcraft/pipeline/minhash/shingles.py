"""Word n-gram shingles of a batch of texts, as sets of deterministic 64-bit hashes.

MinHash compares two documents by the Jaccard similarity of their shingle sets. A text
is case-folded and split into words at every run of characters that are neither letters
nor digits (any script; punctuation and layout do not count), and each run of
``ngram_size`` consecutive words is one shingle. A text of fewer words is one shingle of
all of them; a text without any word has no shingle and takes no part in MinHash.

Every hash is a pure function of the text: each distinct word of a batch is hashed once
with blake2b (Python's ``hash()`` is salted per process, so two executors would disagree)
and the words of an n-gram are combined with a 64-bit mix, vectorised over the whole
Arrow batch with numpy.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batchcraft.dataset.hashing import mix64

WORD_SEPARATORS = r"[^\p{L}\p{N}]+"
"""What separates words: any run of characters that are neither letters nor digits (RE2)."""
_SEED = np.uint64(0x243F6A8885A308D3)  # start value of every n-gram hash
_PAIR_SALT = np.uint64(0x9E3779B97F4A7C15)  # keeps a pair text's shingles apart from the text's


@dataclass(frozen=True)
class ShingleSets:
    """Each document's distinct shingle hashes, sorted, stored one document after another.

    Attributes:
        hashes: uint64, the sets concatenated in document order.
        offsets: int64, ``num_docs + 1`` bounds: document i holds
            ``hashes[offsets[i]:offsets[i + 1]]``.
    """

    hashes: np.ndarray
    offsets: np.ndarray

    @property
    def sizes(self) -> np.ndarray:
        """Shingles per document (0 for a text without words)."""
        return np.diff(self.offsets)

    def of(self, doc: int) -> np.ndarray:
        """The sorted distinct shingle hashes of one document."""
        return self.hashes[self.offsets[doc] : self.offsets[doc + 1]]


def word_hashes(texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Every word of every text as a 64-bit hash, and the document each word is in.

    Null texts have no words. The words are split and encoded by Arrow; only the
    distinct words of the batch are hashed in Python.
    """
    words = pc.split_pattern_regex(pc.utf8_lower(texts), WORD_SEPARATORS)
    flat, document = pc.list_flatten(words), pc.list_parent_indices(words)
    nonempty = pc.greater(pc.utf8_length(flat), 0)
    flat, document = flat.filter(nonempty), document.filter(nonempty)
    if len(flat) == 0:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    encoded = pc.dictionary_encode(flat)
    distinct = np.fromiter(
        (_word_hash(word) for word in encoded.dictionary.to_pylist()),
        dtype=np.uint64,
        count=len(encoded.dictionary),
    )
    indices = encoded.indices.to_numpy(zero_copy_only=False)
    return distinct[indices], document.to_numpy(zero_copy_only=False).astype(np.int64)


def _word_hash(word: str) -> int:
    digest = hashlib.blake2b(word.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def ngram_hashes(
    words: np.ndarray, document: np.ndarray, num_docs: int, ngram_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """The hash of every run of ``ngram_size`` consecutive words within one document, and
    the document of each (a document of fewer words: one hash of all of them).

    Args:
        words: Word hashes, document after document (`word_hashes`).
        document: The document of each word, non-decreasing.
        num_docs: Number of documents (some may have no words).
        ngram_size: Words per shingle.
    """
    counts = np.bincount(document, minlength=num_docs).astype(np.int64)
    starts = np.cumsum(counts) - counts
    per_doc = np.where(counts >= ngram_size, counts - ngram_size + 1, (counts > 0).astype(np.int64))
    total = int(per_doc.sum())
    shingle_doc = np.repeat(np.arange(num_docs, dtype=np.int64), per_doc)
    if total == 0:
        return np.zeros(0, np.uint64), shingle_doc
    rank_in_doc = np.arange(total, dtype=np.int64) - np.repeat(
        np.cumsum(per_doc) - per_doc, per_doc
    )
    first = starts[shingle_doc] + rank_in_doc
    end = (starts + counts)[shingle_doc]
    hashes = np.full(total, _SEED, dtype=np.uint64)
    for offset in range(ngram_size):
        position = first + offset
        inside = position < end  # a short document's n-gram is padded with zeros
        word = np.where(inside, words[np.minimum(position, len(words) - 1)], np.uint64(0))
        hashes = mix64(hashes ^ word)
    return hashes, shingle_doc


def shingle_sets(
    texts: pa.Array, ngram_size: int, pair_texts: pa.Array | None = None
) -> ShingleSets:
    """Each text's set of word n-gram shingles (with ``pair_texts``: the union of the
    text's and its pair's, the pair's kept apart by a salt, as exact dedup compares a
    record's text and pair together).

    Args:
        texts: Normalised texts (nulls have no shingles).
        ngram_size: Words per shingle.
        pair_texts: Second texts of paired data, aligned with ``texts``, or None.
    """
    num_docs = len(texts)
    hashes, document = ngram_hashes(*word_hashes(texts), num_docs, ngram_size)
    if pair_texts is not None:
        pair_hashes, pair_document = ngram_hashes(*word_hashes(pair_texts), num_docs, ngram_size)
        hashes = np.concatenate([hashes, mix64(pair_hashes ^ _PAIR_SALT)])
        document = np.concatenate([document, pair_document])
    order = np.lexsort((hashes, document))
    hashes, document = hashes[order], document[order]
    distinct = np.ones(len(hashes), dtype=bool)
    distinct[1:] = (hashes[1:] != hashes[:-1]) | (document[1:] != document[:-1])
    hashes, document = hashes[distinct], document[distinct]
    sizes = np.bincount(document, minlength=num_docs)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    return ShingleSets(hashes, offsets)
