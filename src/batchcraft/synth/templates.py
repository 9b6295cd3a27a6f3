"""Sentence templates and the synonym table used to write and paraphrase rows.

Every template comes in two forms with the same slots: form 0 is used for base rows,
form 1 reorders the clauses and is used for paraphrase-like (semantic) duplicates.
A row is two sentences: a scene sentence (agent, verb, object, place and maybe an
outcome or its first concept) followed by a follow-up sentence that mentions the rest
of its concepts, or, when all are already mentioned, another object and outcome.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from batchcraft.synth.vocabulary import CONCEPTS_BY_RANK


@dataclass(frozen=True)
class Template:
    """A sentence with named slots in two clause orders.

    Attributes:
        forms: The base wording and a reordered wording with the same slots.
    """

    forms: tuple[str, str]

    @property
    def mentions_concepts(self) -> bool:
        """Whether the template has a slot for concepts (``{concept}`` or ``{concept_list}``)."""
        return "{concept" in self.forms[0]


def _templates(*pairs: tuple[str, str]) -> tuple[Template, ...]:
    return tuple(Template(forms=pair) for pair in pairs)


SCENE_TEMPLATES: tuple[Template, ...] = _templates(
    (
        "{agent} {verb} {object} {place}, with special attention to {concept}.",
        "With special attention to {concept}, {agent} {verb} {object} {place}.",
    ),
    (
        "{place}, {agent} {verb} {object}, and it {outcome}.",
        "{agent} {verb} {object} {place}, and it {outcome}.",
    ),
    (
        "When {agent} {verb} {object} {place}, the whole thing {outcome}.",
        "The whole thing {outcome} when {agent} {verb} {object} {place}.",
    ),
    (
        "Because of a question about {concept}, {agent} {verb} {object} {place}.",
        "{agent} {verb} {object} {place} because of a question about {concept}.",
    ),
    (
        "Recently {agent} {verb} {object} {place} to learn more about {concept}.",
        "To learn more about {concept}, {agent} recently {verb} {object} {place}.",
    ),
    (
        "{agent} {verb} {object} {place}; according to everyone there, it {outcome}.",
        "According to everyone there, {object} {outcome} after {agent} {verb} it {place}.",
    ),
    (
        "It was {place} that {agent} first {verb} {object}, hoping to understand {concept}.",
        "Hoping to understand {concept}, {agent} first {verb} {object} {place}.",
    ),
    (
        "Nobody expected much when {agent} {verb} {object} {place}, but it {outcome}.",
        "Even though nobody expected much, {object} {outcome} once {agent} {verb} it {place}.",
    ),
    (
        "A short report on {concept}: {agent} {verb} {object} {place}.",
        "{agent} {verb} {object} {place}, as told in a short report on {concept}.",
    ),
    (
        "{place}, {agent} {verb} {object} and noticed that it {outcome}.",
        "{agent} noticed that {object} {outcome} after they {verb} it {place}.",
    ),
)
"""First sentence of a row; slots agent, verb, object, place and outcome or concept."""

FOLLOW_UP_TEMPLATES: tuple[Template, ...] = _templates(
    (
        "The notes also cover {concept_list}.",
        "Also covered in the notes: {concept_list}.",
    ),
    (
        "Later, {agent2} said that {object2} {outcome2}.",
        "{agent2} said later on that {object2} {outcome2}.",
    ),
    (
        "Questions about {concept_list} came up often during the discussion.",
        "During the discussion, questions about {concept_list} came up often.",
    ),
    (
        "Afterwards {agent2} explained why {concept_list} made a real difference.",
        "Why {concept_list} made a real difference was explained afterwards by {agent2}.",
    ),
    (
        "Many readers asked for more detail on {concept_list}.",
        "More detail on {concept_list} was requested by many readers.",
    ),
    (
        "In the end {object2} {outcome2}, which surprised {agent2}.",
        "{agent2} was surprised that in the end {object2} {outcome2}.",
    ),
    (
        "The main lesson was about {concept_list}, according to {agent2}.",
        "According to {agent2}, the main lesson concerned {concept_list}.",
    ),
    (
        "Meanwhile {object2} {outcome2} {place2}.",
        "{place2}, meanwhile, {object2} {outcome2}.",
    ),
)
"""Second sentence of a row; slots concept_list, or agent2, object2, outcome2, place2."""

ANSWER_TEMPLATES: tuple[str, ...] = (
    "{advice}",
    "{advice} This is especially true for {concept}.",
    "Good question about {concept}. {advice}",
    "{advice} Keep that in mind whenever {concept} comes up.",
)
"""Wordings of the paired ``answer`` field; ``advice`` is one of the topic's answers."""

_SYNONYM_PAIRS: tuple[tuple[str, str], ...] = (
    ("noticed", "observed"),
    ("expected", "anticipated"),
    ("recently", "lately"),
    ("carefully", "cautiously"),
    ("special attention", "particular focus"),
    ("question", "query"),
    ("learn more about", "find out more about"),
    ("understand", "make sense of"),
    ("said", "remarked"),
    ("explained", "clarified"),
    ("afterwards", "subsequently"),
    ("often", "frequently"),
    ("many", "numerous"),
    ("readers", "people"),
    ("detail", "information"),
    ("surprised", "astonished"),
    ("discussion", "conversation"),
    ("everyone", "everybody"),
    ("nobody", "no one"),
    ("real difference", "big impact"),
    ("main lesson", "key takeaway"),
    ("short report", "brief write-up"),
    ("notes", "write-up"),
    ("whole thing", "entire effort"),
    ("small", "little"),
    ("busy", "hectic"),
    ("packed", "full"),
    ("huge", "enormous"),
    ("slightly", "a bit"),
    ("wonderful", "lovely"),
    ("every", "each"),
    ("quickly", "rapidly"),
    ("large", "big"),
    ("bright", "luminous"),
    ("faint", "dim"),
    ("team", "squad"),
    ("match", "game"),
    ("doctor", "physician"),
    ("lawyer", "attorney"),
    ("contract", "agreement"),
    ("ruling", "decision"),
    ("trip", "journey"),
    ("views", "vistas"),
    ("stunning", "breathtaking"),
    ("crop", "harvest"),
    ("shares", "stocks"),
    ("report", "statement"),
    ("value", "worth"),
    ("night", "evening"),
    ("cold", "chilly"),
    ("clear", "cloudless"),
    ("new", "recent"),
    ("several", "a few"),
    ("nearly", "almost"),
    ("child", "kid"),
    ("teenager", "adolescent"),
    ("elderly", "older"),
    ("listeners", "audience members"),
    ("improved", "got better"),
    ("beautifully", "wonderfully"),
)

SYNONYMS: dict[str, str] = {
    **{first: second for first, second in _SYNONYM_PAIRS},
    **{second: first for first, second in _SYNONYM_PAIRS},
}
"""Word or phrase (lower case) to a synonym, in both directions."""

SYNONYM_PATTERN: re.Pattern[str] = re.compile(
    r"\b(" + "|".join(re.escape(key) for key in sorted(SYNONYMS, key=len, reverse=True)) + r")\b",
)
"""Matches any key of SYNONYMS as a whole word in lower-cased text, longest phrases first.

(Matching lower-cased text is about eight times faster than ``re.IGNORECASE`` here.)
"""


def _check_concepts_have_no_synonyms() -> None:
    # A paraphrase must keep its concept names verbatim, or its tags would lie.
    for concept in CONCEPTS_BY_RANK:
        assert SYNONYM_PATTERN.search(concept.lower()) is None, f"concept {concept!r} has a synonym"


_check_concepts_have_no_synonyms()
assert len(SYNONYMS) == 2 * len(_SYNONYM_PAIRS), "each synonym must appear in one pair only"
