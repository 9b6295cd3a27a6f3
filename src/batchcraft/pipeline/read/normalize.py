"""Text normalisation of every record, and the id of a record whose input gives none."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_SPACES = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


def normalize_text(text: str) -> str:
    """Unicode NFKC, unified line endings, runs of spaces collapsed, trimmed.

    Paragraph breaks survive (as one blank line); everything else that only changes
    how a text is laid out, not what it says, is folded.
    """
    text = unicodedata.normalize("NFKC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _SPACES.sub(" ", text)
    text = _BLANK_LINES.sub("\n\n", text)
    return "\n".join(line.strip() for line in text.split("\n")).strip()


def derived_id(file_name: str, record: int, text: str) -> str:
    """Stable id of a row whose input has no id column: a hash of content and position."""
    digest = hashlib.sha1(f"{file_name}\x00{record}\x00{text}".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:20]
