"""Building the logical rows of the corpus: distinct base rows, then injected duplicates.

Rows here have no id or source yet; ``corpus.py`` shuffles them into sources. A
duplicate refers to its original by position in the row list.
"""

from __future__ import annotations

import bisect
import itertools
import random
from dataclasses import dataclass, field

from batchcraft.errors import ConfigError
from batchcraft.pipeline.dedup.exact import exact_dedup_form
from batchcraft.synth.text import (
    RowSpec,
    exact_variant,
    near_variant,
    paraphrase,
    render,
    render_answer,
    sample_row_spec,
)
from batchcraft.synth.vocabulary import CONCEPTS_BY_RANK, TOPIC_OF_CONCEPT, TOPICS

_CONCEPT_COUNTS = (1, 2, 3, 4)
_CONCEPT_COUNT_CUMULATIVE = [0.5, 0.8, 0.95, 1.0]  # 1 to 4 concepts per row
_MAX_ATTEMPTS = 1000


@dataclass(frozen=True)
class Row:
    """One logical row of the corpus.

    Attributes:
        text: The row's text.
        answer: The paired text.
        tags: Concept names the text mentions.
        topic: Index into ``TOPICS``.
        spec: How a base row was rendered; ``None`` for duplicates.
        kind: ``"base"``, ``"exact"``, ``"near"`` or ``"semantic"``.
        original: Position of the row this one copies, for duplicates.
        details: Extra ground-truth fields (edit names, variant, chain root position).
    """

    text: str
    answer: str
    tags: tuple[str, ...]
    topic: int
    spec: RowSpec | None = None
    kind: str = "base"
    original: int | None = None
    details: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class DuplicateCounts:
    """How many duplicates of each kind to inject (chains add two near duplicates each)."""

    exact: int
    near: int
    semantic: int
    chains: int

    @property
    def total_rows(self) -> int:
        """Rows added to the corpus by all duplicates."""
        return self.exact + self.near + self.semantic + 2 * self.chains

    @property
    def originals(self) -> int:
        """Distinct base rows that get copied."""
        return self.exact + self.near + self.semantic + self.chains


class ConceptSampler:
    """Draws a row's concepts from a Zipf-like law over concept ranks.

    The first concept is drawn over all concepts and fixes the row's topic; the others
    (0-3 more) are drawn, with the same rank weights, among that topic's concepts, so
    that the text stays on one topic while the global frequencies stay long-tailed.
    """

    def __init__(self, exponent: float) -> None:
        if exponent <= 0:
            raise ConfigError(f"{exponent=} must be > 0")
        self.weights = {
            concept: 1.0 / (rank + 1) ** exponent for rank, concept in enumerate(CONCEPTS_BY_RANK)
        }
        self.cumulative = list(itertools.accumulate(self.weights.values()))
        self.topic_cumulative = [
            list(itertools.accumulate(self.weights[concept] for concept in topic.concepts))
            for topic in TOPICS
        ]

    def sample(self, rng: random.Random) -> tuple[int, tuple[str, ...]]:
        """Returns (topic index, concepts)."""
        first = CONCEPTS_BY_RANK[_draw(rng, self.cumulative)]
        topic = TOPIC_OF_CONCEPT[first]
        concepts = [first]
        count = _CONCEPT_COUNTS[_draw(rng, _CONCEPT_COUNT_CUMULATIVE)]
        while len(concepts) < count:
            concept = TOPICS[topic].concepts[_draw(rng, self.topic_cumulative[topic])]
            if concept not in concepts:
                concepts.append(concept)
        return topic, tuple(concepts)


def _draw(rng: random.Random, cumulative: list[float]) -> int:
    """Index drawn with probability proportional to its weight, given cumulative weights."""
    return bisect.bisect_right(cumulative, rng.random() * cumulative[-1])


def base_rows(rng: random.Random, count: int, concept_exponent: float) -> list[Row]:
    """``count`` rows whose texts are pairwise distinct even in their exact-dedup form."""
    sampler = ConceptSampler(concept_exponent)
    seen: set[str] = set()
    rows: list[Row] = []
    for _ in range(count):
        for _attempt in range(_MAX_ATTEMPTS):
            topic, concepts = sampler.sample(rng)
            spec = sample_row_spec(rng, topic, concepts)
            text = render(spec)
            key = exact_dedup_form(text)
            if key not in seen:
                break
        else:  # pragma: no cover - the combinatorial space is far larger than any corpus
            raise ConfigError(f"cannot generate {count} distinct rows")
        seen.add(key)
        answer = render_answer(rng, spec)
        rows.append(Row(text=text, answer=answer, tags=concepts, topic=topic, spec=spec))
    return rows


def duplicate_rows(rng: random.Random, base: list[Row], counts: DuplicateCounts) -> list[Row]:
    """Copies of distinct base rows; the result continues the positions of ``base``.

    Each chain is a near duplicate B of a base row A followed by a near duplicate C of
    B (C's original is B, and its ``chain_root`` detail is A).
    """
    if counts.originals > len(base):
        raise ConfigError(f"{counts.originals} duplicates need as many base rows, have {len(base)}")
    originals = rng.sample(range(len(base)), counts.originals)
    kinds = (
        ["exact"] * counts.exact
        + ["near"] * counts.near
        + ["semantic"] * counts.semantic
        + ["chain"] * counts.chains
    )
    rows: list[Row] = []
    for kind, original in zip(kinds, originals, strict=True):
        source = base[original]
        if kind == "chain":
            middle = _copy(rng, "near", source, original, {"chain_root": original})
            rows.append(middle)
            middle_position = len(base) + len(rows) - 1
            rows.append(_copy(rng, "near", middle, middle_position, {"chain_root": original}))
        else:
            rows.append(_copy(rng, kind, source, original, {}))
    return rows


def _copy(rng: random.Random, kind: str, source: Row, original: int, details: dict) -> Row:
    for _attempt in range(_MAX_ATTEMPTS):
        if kind == "exact":
            text, variant = exact_variant(rng, source.text)
            details = {**details, "variant": variant}
        elif kind == "near":
            text, edits = near_variant(rng, source.text)
            details = {**details, "edits": edits}
        else:
            assert source.spec is not None, "semantic duplicates copy base rows"
            text = paraphrase(rng, source.spec)
        if (kind == "exact") == (exact_dedup_form(text) == exact_dedup_form(source.text)):
            break
    return Row(
        text=text,
        answer=source.answer,
        tags=source.tags,
        topic=source.topic,
        kind=kind,
        original=original,
        details=details,
    )
