"""Row accounting: per stage and per source, in = kept + duplicates + rejected, exactly.

Pure arithmetic over the counts the write stage aggregates in Spark (`stage.count_outcomes`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from batchcraft.errors import BatchcraftError

KINDS = ("exact", "minhash", "near", "semantic")


def account(
    inputs: dict[str, int],
    rejected_by_reason: Iterable[tuple[str, str, int]],
    written_by_kind: Iterable[tuple[str, str | None, int]],
) -> dict[str, Any]:
    """The manifest's ``counts`` section: every input record in exactly one outcome.

    Args:
        inputs: Parsed records per source (rejected or not).
        rejected_by_reason: (source, reason, count) of the rejected records.
        written_by_kind: (source, ``dup_kind``, count) of the dataset's rows as written
            (``dup_kind`` None for a kept row).
    """
    rejected: dict[str, dict[str, int]] = defaultdict(dict)
    for source, reason, count in rejected_by_reason:
        rejected[source][reason] = count
    outcomes: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys((*KINDS, "kept"), 0))
    for source, kind, count in written_by_kind:
        outcomes[source][kind or "kept"] += count
    by_source = {}
    for source in sorted(set(inputs) | set(outcomes)):
        out = outcomes[source]
        by_source[source] = {
            "in": inputs.get(source, 0),
            "rejected": sum(rejected[source].values()),
            "exact_duplicates": out["exact"],
            "minhash_duplicates": out["minhash"],
            "near_duplicates": out["near"],
            "semantic_duplicates": out["semantic"],
            "kept": out["kept"],
        }
    total = {key: sum(s[key] for s in by_source.values()) for key in next(iter(by_source.values()))}
    reasons: dict[str, int] = defaultdict(int)
    for per_source in rejected.values():
        for reason, count in per_source.items():
            reasons[reason] += count
    return {
        "total": total,
        "by_source": by_source,
        "rejected_by_reason": dict(sorted(reasons.items())),
        "stages": _stages(by_source),
    }


def _stages(by_source: dict[str, dict[str, int]]) -> list[dict[str, Any]]:
    def stage(name: str, split: Any) -> dict[str, Any]:
        per_source = {source: split(c) for source, c in by_source.items()}
        totals = {
            key: sum(v[key] for v in per_source.values())
            for key in ("in", "kept", "duplicates", "rejected")
        }
        return {"stage": name, **totals, "by_source": per_source}

    def semantic(c: dict[str, int]) -> int:
        return c["near_duplicates"] + c["semantic_duplicates"]

    def after_exact(c: dict[str, int]) -> int:
        return c["kept"] + semantic(c) + c["minhash_duplicates"]

    return [
        stage(
            "validate",
            lambda c: {
                "in": c["in"],
                "kept": c["in"] - c["rejected"],
                "duplicates": 0,
                "rejected": c["rejected"],
            },
        ),
        stage(
            "exact_dedup",
            lambda c: {
                "in": c["in"] - c["rejected"],
                "kept": after_exact(c),
                "duplicates": c["exact_duplicates"],
                "rejected": 0,
            },
        ),
        stage(
            "minhash_dedup",
            lambda c: {
                "in": after_exact(c),
                "kept": c["kept"] + semantic(c),
                "duplicates": c["minhash_duplicates"],
                "rejected": 0,
            },
        ),
        stage(
            "semantic_dedup",
            lambda c: {
                "in": c["kept"] + semantic(c),
                "kept": c["kept"],
                "duplicates": semantic(c),
                "rejected": 0,
            },
        ),
    ]


def check_balanced(counts: dict[str, Any]) -> None:
    """Raise if any source's records are not all accounted for (a bug, never a user error)."""
    for source, c in counts["by_source"].items():
        outcome = (
            c["rejected"]
            + c["exact_duplicates"]
            + c["minhash_duplicates"]
            + c["near_duplicates"]
            + c["semantic_duplicates"]
            + c["kept"]
        )
        if outcome != c["in"]:
            raise BatchcraftError(
                f"row accounting broken for source {source!r}: {c['in']} in, "
                f"{outcome} accounted for ({c})"
            )
