"""What exact dedup compares: a text's exact-dedup form, and the key of a record (its text
and pair). Pure, no Spark: the synthetic corpus uses the same form for its ground truth."""

from __future__ import annotations

import hashlib
import re

_ALL_SPACE = re.compile(r"\s+")


def exact_dedup_form(text: str) -> str:
    """The form under which exact duplicates compare equal: case-folded, every run of
    whitespace one space, trimmed."""
    return _ALL_SPACE.sub(" ", text.casefold()).strip()


def dedup_key(text: str, pair_text: str | None = None) -> str:
    """Key of exact duplicates: a hash of the exact-dedup form of the text (and the pair)."""
    key = exact_dedup_form(text)
    if pair_text is not None:
        key += "\x1f" + exact_dedup_form(pair_text)
    return hashlib.sha1(key.encode("utf-8")).hexdigest()
