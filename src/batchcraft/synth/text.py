"""Writing rows from templates, and the edits that turn a row into a duplicate.

All randomness comes from a caller-supplied ``random.Random``, so the same seed always
yields the same rows and the same edits.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from batchcraft.pipeline.dedup.exact import exact_dedup_form
from batchcraft.synth.templates import (
    ANSWER_TEMPLATES,
    FOLLOW_UP_TEMPLATES,
    SCENE_TEMPLATES,
    SYNONYM_PATTERN,
    SYNONYMS,
)
from batchcraft.synth.vocabulary import TOPICS

_FOLLOW_UPS_WITH_CONCEPTS = tuple(
    index for index, template in enumerate(FOLLOW_UP_TEMPLATES) if template.mentions_concepts
)
_FOLLOW_UPS_WITHOUT_CONCEPTS = tuple(
    index for index, template in enumerate(FOLLOW_UP_TEMPLATES) if not template.mentions_concepts
)


@dataclass(frozen=True)
class RowSpec:
    """Everything needed to render one base row, in either template form.

    Attributes:
        topic: Index into ``TOPICS``.
        scene_template: Index into ``SCENE_TEMPLATES``.
        follow_up_template: Index into ``FOLLOW_UP_TEMPLATES``.
        slots: Slot name to filler.
        concepts: The row's concepts; all of them are mentioned in the text.
    """

    topic: int
    scene_template: int
    follow_up_template: int
    slots: dict[str, str]
    concepts: tuple[str, ...]


def join_phrases(phrases: tuple[str, ...]) -> str:
    """``("a", "b", "c")`` -> ``"a, b and c"``."""
    if len(phrases) == 1:
        return phrases[0]
    return ", ".join(phrases[:-1]) + " and " + phrases[-1]


def _capitalize(sentence: str) -> str:
    return sentence[:1].upper() + sentence[1:]


def pick(rng: random.Random, options: Sequence[str]) -> str:
    """A uniformly random element; several times faster than ``rng.choice`` in hot loops."""
    return options[int(rng.random() * len(options))]


def sample_row_spec(rng: random.Random, topic: int, concepts: tuple[str, ...]) -> RowSpec:
    """Draws templates and fillers for a row of ``topic`` that mentions ``concepts``."""
    vocabulary = TOPICS[topic]
    scene_template = int(rng.random() * len(SCENE_TEMPLATES))
    scene_mentions_concept = SCENE_TEMPLATES[scene_template].mentions_concepts
    unmentioned = concepts[1:] if scene_mentions_concept else concepts
    follow_ups = _FOLLOW_UPS_WITH_CONCEPTS if unmentioned else _FOLLOW_UPS_WITHOUT_CONCEPTS
    slots = {"verb": pick(rng, vocabulary.verbs)}
    fillers = (
        ("agent", vocabulary.agents),
        ("object", vocabulary.objects),
        ("outcome", vocabulary.outcomes),
        ("place", vocabulary.places),
    )
    for name, options in fillers:
        # The follow-up's filler differs from the scene's, or the row repeats itself.
        index = int(rng.random() * len(options))
        other = (index + 1 + int(rng.random() * (len(options) - 1))) % len(options)
        slots[name], slots[name + "2"] = options[index], options[other]
    slots["object"] += " " + pick(rng, vocabulary.details)
    slots["concept"] = concepts[0]
    slots["concept_list"] = join_phrases(unmentioned) if unmentioned else ""
    return RowSpec(
        topic=topic,
        scene_template=scene_template,
        follow_up_template=follow_ups[int(rng.random() * len(follow_ups))],
        slots=slots,
        concepts=concepts,
    )


def render(spec: RowSpec, form: int = 0) -> str:
    """The text of a row: its two sentences in template form 0 (base) or 1 (reordered)."""
    scene = SCENE_TEMPLATES[spec.scene_template].forms[form].format(**spec.slots)
    follow_up = FOLLOW_UP_TEMPLATES[spec.follow_up_template].forms[form].format(**spec.slots)
    return _capitalize(scene) + " " + _capitalize(follow_up)


def render_answer(rng: random.Random, spec: RowSpec) -> str:
    """A short response that matches the row: topic advice, often naming a concept."""
    advice = pick(rng, TOPICS[spec.topic].answers)
    template = pick(rng, ANSWER_TEMPLATES)
    return template.format(advice=advice, concept=pick(rng, spec.concepts))


def paraphrase(rng: random.Random, spec: RowSpec, substitute_probability: float = 0.8) -> str:
    """Same meaning, different wording: reordered clauses plus synonym substitution."""
    text = render(spec, form=1)
    pieces = []
    end = 0
    for match in SYNONYM_PATTERN.finditer(text.lower()):
        if rng.random() >= substitute_probability:
            continue
        word = text[match.start() : match.end()]
        synonym = SYNONYMS[match.group(0)]
        pieces += [
            text[end : match.start()],
            _capitalize(synonym) if word[0].isupper() else synonym,
        ]
        end = match.end()
    return "".join([*pieces, text[end:]])


def exact_variant(rng: random.Random, text: str) -> tuple[str, str]:
    """A copy that differs at most in whitespace or letter case; returns (text, variant)."""
    variant = rng.choice(("identical", "identical", "whitespace", "whitespace", "case"))
    if variant == "whitespace":
        words = text.split(" ")
        gap = rng.randrange(1, len(words))
        text = " ".join(words[:gap]) + "  " + " ".join(words[gap:]) + rng.choice((" ", "\t", "\n"))
    elif variant == "case":
        text = text.lower()
    return text, variant


def near_variant(rng: random.Random, text: str) -> tuple[str, list[str]]:
    """A copy with one or two small edits; returns (text, names of the edits).

    The first edit always changes a word (typo, dropped or swapped word), so the copy
    is never an exact duplicate, even under normalisation that drops punctuation.
    """
    # Typos get a smaller share and never come twice: one misspelt word already
    # moves a sentence embedding as much as dropping two ordinary words.
    first = rng.choices(("typo", "drop_word", "swap_words"), weights=(0.3, 0.35, 0.35))[0]
    edits = [first]
    text = _EDITS[first](rng, text)
    if rng.random() < 0.4:
        second = rng.choice(("drop_word", "swap_words", "punctuation"))
        edits.append(second)
        text = _EDITS[second](rng, text)
    return text, edits


def _typo(rng: random.Random, text: str) -> str:
    words = text.split(" ")
    candidates = [index for index, word in enumerate(words) if len(word) >= 5 and word.isalpha()]
    index = rng.choice(candidates)
    word = words[index]
    position = rng.randrange(1, len(word) - 2)
    kind = rng.randrange(3)
    if kind == 0 and word[position] != word[position + 1]:  # swap two neighbouring letters
        word = word[:position] + word[position + 1] + word[position] + word[position + 2 :]
    elif kind == 1:  # drop a letter
        word = word[:position] + word[position + 1 :]
    else:  # double a letter
        word = word[:position] + word[position] + word[position:]
    words[index] = word
    return " ".join(words)


def _drop_word(rng: random.Random, text: str) -> str:
    words = text.split(" ")
    del words[rng.randrange(1, len(words) - 1)]
    return " ".join(words)


def _swap_words(rng: random.Random, text: str) -> str:
    words = text.split(" ")
    index = rng.randrange(1, len(words) - 2)
    if exact_dedup_form(words[index]) == exact_dedup_form(words[index + 1]):
        return _drop_word(rng, text)
    words[index], words[index + 1] = words[index + 1], words[index]
    return " ".join(words)


def _punctuation(rng: random.Random, text: str) -> str:
    if "," in text and rng.random() < 0.5:
        return text.replace(",", "", 1)
    return text[:-1] + rng.choice(("!", "...", ";")) if text.endswith(".") else text + "."


_EDITS = {
    "typo": _typo,
    "drop_word": _drop_word,
    "swap_words": _swap_words,
    "punctuation": _punctuation,
}
