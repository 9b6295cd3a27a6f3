"""News-length articles (40-120 words) for benchmarks of the embed stage and whole runs.

The demo corpus's rows are two sentences (26-56 words); the embed stage's cost depends on
text length (attention is quadratic in it and padding follows the longest text of a
batch), so speed is measured on texts as long as the news articles of public corpora.
An article is several rows of one topic, cut at a word to a length drawn uniformly.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

from batchcraft.errors import ConfigError
from batchcraft.synth.rows import ConceptSampler
from batchcraft.synth.text import render, sample_row_spec

NEWS_MIN_WORDS = 40
NEWS_MAX_WORDS = 120
_RECENT = 1000


def news_articles(
    count: int,
    seed: int = 0,
    min_words: int = NEWS_MIN_WORDS,
    max_words: int = NEWS_MAX_WORDS,
) -> list[str]:
    """``count`` articles of ``min_words`` to ``max_words`` words (uniform), deterministic.

    Example:
        >>> len(news_articles(3, seed=1)[0].split()) >= 40
        True
    """
    return list(_articles(count, seed, min_words, max_words))


def _articles(count: int, seed: int, min_words: int, max_words: int) -> Iterator[str]:
    if count < 0 or not 1 <= min_words <= max_words:
        raise ConfigError(f"{count=} must be >= 0 and 1 <= {min_words=} <= {max_words=}")
    rng = random.Random(seed)
    sampler = ConceptSampler(1.1)
    for _ in range(count):
        target = rng.randint(min_words, max_words)
        topic, concepts = sampler.sample(rng)
        words: list[str] = []
        while len(words) < target:
            words += render(sample_row_spec(rng, topic, concepts)).split()
        yield " ".join(words[:target])


def write_news_corpus(
    out_dir: str | Path,
    num_docs: int,
    seed: int = 0,
    duplicate_fraction: float = 0.05,
    docs_per_file: int = 100_000,
) -> list[Path]:
    """JSONL files of ``{"id", "text"}`` news articles under ``out_dir``, streamed to disk.

    A ``duplicate_fraction`` of the documents copy an earlier one, half exactly and half
    with its last word dropped (a near duplicate), so the dedup stages have work to do.

    Returns:
        The files written, in order.
    """
    if not 0.0 <= duplicate_fraction < 1.0:
        raise ConfigError(f"{duplicate_fraction=} must be in [0, 1)")
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed + 1)
    recent: list[str] = []
    paths: list[Path] = []
    handle = None
    for number, text in enumerate(_articles(num_docs, seed, NEWS_MIN_WORDS, NEWS_MAX_WORDS)):
        if number % docs_per_file == 0:
            if handle is not None:
                handle.close()
            paths.append(root / f"news-{len(paths):04d}.jsonl")
            handle = paths[-1].open("w", encoding="utf-8", newline="\n")
        if recent and rng.random() < duplicate_fraction:
            original = recent[int(rng.random() * len(recent))]
            text = original if rng.random() < 0.5 else original.rsplit(" ", 1)[0]
        elif len(recent) < _RECENT:
            recent.append(text)
        else:  # copies come from the last thousand originals (a ring)
            recent[number % _RECENT] = text
        assert handle is not None
        handle.write(json.dumps({"id": f"news-{number:08d}", "text": text}) + "\n")
    if handle is not None:
        handle.close()
    return paths
