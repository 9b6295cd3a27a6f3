"""The funnel section's row accounting: what ``data/`` says about every row's fate
(kept, or removed as which kind of duplicate), per source and per shard, and which
rows break the contract's invariants."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batchcraft.dataset import schema

DUP_KINDS = ("exact", "minhash", "near", "semantic")  # the kinds the funnel counts apart
SOURCE_KEYS = ("rows", "kept", "exact", "minhash", "near", "semantic", "removed_other")


@dataclass
class RowTally:
    """What the data shards say about every row's fate.

    Attributes:
        by_source: Per source: ``rows`` (in data/), ``kept``, ``exact``, ``minhash``,
            ``near``, ``semantic`` (removed duplicates by kind) and ``removed_other``
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

    columns: tuple[str, ...] = (schema.SOURCE, schema.DUP_KIND, schema.DUP_OF, schema.KEEP)

    def __init__(self, num_shards: int) -> None:
        self._groups: Counter[tuple[Any, ...]] = Counter()
        self._shard_rows = np.zeros(num_shards, dtype=np.int64)
        self._shard_kept = np.zeros(num_shards, dtype=np.int64)

    def update(self, batch: pa.RecordBatch, shard: int) -> None:
        """Count the batch's rows by (source, dup_kind, keep, has dup_of)."""
        table = pa.table(
            {
                "source": batch[schema.SOURCE],
                "dup_kind": batch[schema.DUP_KIND],
                "keep": batch[schema.KEEP],
                "has_dup_of": pc.is_valid(batch[schema.DUP_OF]),
            }
        )
        grouped = table.group_by(["source", "dup_kind", "keep", "has_dup_of"]).aggregate(
            [([], "count_all")]
        )
        for row in grouped.to_pylist():
            key = (row["source"], row["dup_kind"], row["keep"], row["has_dup_of"])
            self._groups[key] += row["count_all"]
        self._shard_rows[shard] += batch.num_rows
        self._shard_kept[shard] += pc.sum(batch[schema.KEEP]).as_py() or 0

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
