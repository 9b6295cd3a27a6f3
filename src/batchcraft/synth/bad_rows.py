"""Lines a validating reader must reject, one kind per rejection reason.

They go to a separate file (``bad/bad.jsonl``) so the clean corpus stays clean and a
demo can show the rejects with their reasons.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass

MAX_TEXT_BYTES = 100_000
"""Texts longer than this (in UTF-8 bytes) are rejected as ``text_too_long``."""

REASONS = ("missing_text", "invalid_utf8", "text_too_long", "malformed_record")
"""Every rejection reason the bad rows exercise."""

_FILLER = "This line should never reach the curated dataset. "


@dataclass(frozen=True)
class BadLine:
    """One rejected-worthy line of the bad file.

    Attributes:
        id: Ground-truth id (the line itself may not carry it, e.g. when not JSON).
        reason: The rejection reason a validating reader should give.
        variant: What exactly is wrong with it, e.g. ``"null_text"``.
        line: The raw bytes of the line, without the newline.
    """

    id: str
    reason: str
    variant: str
    line: bytes


def _record(row_id: str, **fields: object) -> bytes:
    return json.dumps({"id": row_id, **fields, "answer": "n/a", "tags": []}).encode()


_VARIANTS: tuple[tuple[str, str, Callable[[str], bytes]], ...] = (
    ("empty_text", "missing_text", lambda row_id: _record(row_id, text="")),
    ("no_text_key", "missing_text", lambda row_id: _record(row_id)),
    ("null_text", "missing_text", lambda row_id: _record(row_id, text=None)),
    ("whitespace_text", "missing_text", lambda row_id: _record(row_id, text=" \t\n  ")),
    (
        "invalid_bytes",
        "invalid_utf8",
        lambda row_id: (
            b'{"id": "%s", "text": "caf\xff\xfe au lait \xc3", "answer": "n/a", "tags": []}'
            % row_id.encode()
        ),
    ),
    (
        "too_long",
        "text_too_long",
        lambda row_id: _record(row_id, text=_FILLER * (MAX_TEXT_BYTES // len(_FILLER) + 20)),
    ),
    (
        "not_json",
        "malformed_record",
        lambda row_id: b'{"id": "%s", "text": "an unterminated string' % row_id.encode(),
    ),
    ("json_array", "malformed_record", lambda row_id: b"[1, 2]"),
    ("json_string", "malformed_record", lambda row_id: b'"just a string"'),
)


def bad_lines(rng: random.Random, copies: int = 2) -> list[BadLine]:
    """``copies`` lines of every bad variant, in a seeded order, ids ``bad-000``, ``bad-001``..."""
    kinds = [(variant, reason, make) for variant, reason, make in _VARIANTS for _ in range(copies)]
    rng.shuffle(kinds)
    lines = []
    for index, (variant, reason, make) in enumerate(kinds):
        row_id = f"bad-{index:03d}"
        lines.append(BadLine(id=row_id, reason=reason, variant=variant, line=make(row_id)))
    return lines
