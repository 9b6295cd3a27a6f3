"""Row accounting: kept / duplicate counts per source and rejected rows per reason."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batchcraft.report.sampling import GroupedSample
from batchcraft.report.scan import iter_batches

DUP_KINDS = ("exact", "near", "semantic")
SOURCE_KEYS = ("rows", "kept", "exact", "near", "semantic", "removed_other")
REJECT_COLUMNS = ("source", "file", "record", "reason", "raw")


@dataclass
class RowTally:
    """What the data shards say about every row's fate.

    Attributes:
        by_source: Per source: ``rows`` (in data/), ``kept``, ``exact``, ``near``,
            ``semantic`` (removed duplicates by kind) and ``removed_other``
            (keep = false without a known duplicate kind).
        anomalies: Counts of rows that break the contract's invariants, by name.
        shard_rows: Rows per shard, in shard order.
        shard_kept: Kept rows per shard, in shard order.
    """

    by_source: dict[str, dict[str, int]] = field(default_factory=dict)
    anomalies: dict[str, int] = field(default_factory=dict)
    shard_rows: list[int] = field(default_factory=list)
    shard_kept: list[int] = field(default_factory=list)


class RowCounts:
    """Accumulates a RowTally over the data shards.

    Args:
        num_shards: Number of shards the scan will visit.
    """

    columns: tuple[str, ...] = ("source", "dup_kind", "dup_of", "keep")

    def __init__(self, num_shards: int) -> None:
        self._groups: Counter[tuple[Any, ...]] = Counter()
        self._shard_rows = np.zeros(num_shards, dtype=np.int64)
        self._shard_kept = np.zeros(num_shards, dtype=np.int64)

    def update(self, batch: pa.RecordBatch, shard: int) -> None:
        """Count the batch's rows by (source, dup_kind, keep, has dup_of)."""
        table = pa.table(
            {
                "source": batch["source"],
                "dup_kind": batch["dup_kind"],
                "keep": batch["keep"],
                "has_dup_of": pc.is_valid(batch["dup_of"]),
            }
        )
        grouped = table.group_by(["source", "dup_kind", "keep", "has_dup_of"]).aggregate(
            [([], "count_all")]
        )
        for row in grouped.to_pylist():
            key = (row["source"], row["dup_kind"], row["keep"], row["has_dup_of"])
            self._groups[key] += row["count_all"]
        self._shard_rows[shard] += batch.num_rows
        self._shard_kept[shard] += pc.sum(batch["keep"]).as_py() or 0

    def result(self) -> RowTally:
        """The tally of every row seen so far."""
        tally = RowTally(shard_rows=self._shard_rows.tolist(), shard_kept=self._shard_kept.tolist())
        anomalies: Counter[str] = Counter()
        for (source, kind, keep, has_dup_of), count in sorted(
            self._groups.items(), key=lambda item: tuple(str(part) for part in item[0])
        ):
            counts = tally.by_source.setdefault(str(source), dict.fromkeys(SOURCE_KEYS, 0))
            counts["rows"] += count
            if keep:
                counts["kept"] += count
            elif kind in DUP_KINDS:
                counts[kind] += count
            else:
                counts["removed_other"] += count
            for name, broken in _invariant_breaks(source, kind, keep, has_dup_of):
                if broken:
                    anomalies[name] += count
        tally.anomalies = dict(sorted(anomalies.items()))
        return tally


def _invariant_breaks(
    source: Any, kind: Any, keep: Any, has_dup_of: bool
) -> list[tuple[str, bool]]:
    """Named contract invariants and whether a row group breaks them."""
    return [
        ("null source", source is None),
        ("null keep", keep is None),
        ("unknown dup_kind", kind is not None and kind not in DUP_KINDS),
        ("duplicate kept (keep = true with a dup_kind)", keep is True and kind is not None),
        ("removed without a dup_kind (keep = false)", keep is False and kind is None),
        ("dup_kind without dup_of", kind is not None and not has_dup_of),
        ("dup_of without dup_kind", kind is None and has_dup_of),
    ]


@dataclass
class RejectTally:
    """Rejected rows counted by (source, reason), with a few examples per reason."""

    by_source_reason: dict[tuple[str, str], int]
    examples: dict[str, list[dict[str, Any]]]

    def by_reason(self) -> dict[str, int]:
        """Rejected rows per reason, most frequent first."""
        totals: Counter[str] = Counter()
        for (_, reason), count in self.by_source_reason.items():
            totals[reason] += count
        return dict(sorted(totals.items(), key=lambda item: (-item[1], item[0])))

    def by_source(self) -> dict[str, int]:
        """Rejected rows per source."""
        totals: Counter[str] = Counter()
        for (source, _), count in self.by_source_reason.items():
            totals[source] += count
        return dict(sorted(totals.items()))


def scan_rejects(files: list[Path], examples_per_reason: int = 3, seed: int = 0) -> RejectTally:
    """Count reject files by (source, reason) and sample a few rejected records per reason."""
    counts: Counter[tuple[str, str]] = Counter()
    reasons: dict[str, int] = {}
    sample = GroupedSample(examples_per_reason)
    rng = np.random.default_rng(seed)
    for _, batch in iter_batches(files, REJECT_COLUMNS):
        pairs = pa.table({"source": batch["source"], "reason": batch["reason"]})
        grouped = pairs.group_by(["source", "reason"]).aggregate([([], "count_all")])
        for row in grouped.to_pylist():
            counts[(str(row["source"]), str(row["reason"]))] += row["count_all"]
        reason_names = [str(value) for value in batch["reason"].to_pylist()]
        codes = np.array([reasons.setdefault(name, len(reasons)) for name in reason_names])
        payload = {name: batch[name] for name in ("source", "file", "record", "raw")}
        sample.offer(codes, rng.random(batch.num_rows), payload)
    names = {code: name for name, code in reasons.items()}
    examples: dict[str, list[dict[str, Any]]] = {}
    for row in sample.rows():
        reason = names[row.pop("group")]
        row.pop("key")
        examples.setdefault(reason, []).append(row)
    return RejectTally(by_source_reason=dict(counts), examples=examples)
