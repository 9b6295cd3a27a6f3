"""Text normalisation shared by validation, exact dedup and ids."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_SPACES = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
_ALL_SPACE = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Unicode NFKC, unified line endings, runs of spaces collapsed, trimmed.

    Paragraph breaks survive (as one blank line); everything else that only changes
    how a text is laid out, not what it says, is folded.
    """
    text = unicodedata.normalize("NFKC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _SPACES.sub(" ", text)
    text = _BLANK_LINES.sub("\n\n", text)
    return "\n".join(line.strip() for line in text.split("\n")).strip()


def dedup_key(text: str, pair_text: str | None = None) -> str:
    """Key of exact duplicates: case-folded text with all whitespace collapsed (plus the pair)."""
    key = _ALL_SPACE.sub(" ", text.casefold()).strip()
    if pair_text is not None:
        key += "\x1f" + _ALL_SPACE.sub(" ", pair_text.casefold()).strip()
    return hashlib.sha1(key.encode("utf-8")).hexdigest()


def derived_id(file_name: str, record: int, text: str) -> str:
    """Stable id of a row whose input has no id column: a hash of content and position."""
    digest = hashlib.sha1(f"{file_name}\x00{record}\x00{text}".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:20]
