"""The funnel section's part for a dataset curated against earlier ones (``curate NEW
--against PREV``): what was removed against them, per kind, and a few removed rows beside
the earlier row they duplicate (read from that dataset's shards, local or a cached copy).

Nothing here for a dataset without predecessors: the part is absent from the JSON and
from the page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.dataset as pads

from batchcraft.dataset.manifest import list_shards, read_manifest
from batchcraft.dataset.remote import local_dataset
from batchcraft.errors import BatchcraftError
from batchcraft.report.fetch import truncate
from batchcraft.report.html import Html, heading, paragraph, table

KINDS = ("duplicate_id", "exact", "minhash", "near", "semantic")
EXAMPLES_PER_KIND = 3
EXAMPLE_CHARS = 160


def against_json(manifest: dict[str, Any], shards: list[Path]) -> dict[str, Any] | None:
    """The predecessors, the rows removed against them per kind, and examples (None for a
    dataset curated alone)."""
    section = manifest.get("incremental")
    if not isinstance(section, dict):
        return None
    removed = section.get("removed_against_previous") or {}
    predecessors = section.get("predecessors") or []
    return {
        "predecessors": predecessors,
        "recluster": bool(section.get("recluster")),
        "removed": {kind: int(removed.get(kind, 0)) for kind in KINDS},
        "examples": _examples(shards, [str(p.get("path")) for p in predecessors]),
    }


def _examples(shards: list[Path], predecessors: list[str]) -> list[dict[str, Any]]:
    """A few removed rows per kind whose ``dup_of`` is an earlier dataset's row, with
    that row's text; none when the earlier datasets cannot be read any more."""
    if not shards:
        return []
    removed = (
        pads.dataset([str(s) for s in shards], format="parquet")
        .to_table(columns=["id", "text", "dup_of", "dup_kind"], filter=~pc.field("keep"))
        .to_pylist()
    )
    wanted = {row["dup_of"] for row in removed}
    texts: dict[str, str] = {}
    for given in predecessors:
        try:
            root = local_dataset(given)
            paths = [str(s.path) for s in list_shards(root, read_manifest(root))]
        except BatchcraftError:
            continue  # moved or deleted since: the counts still stand
        earlier = pads.dataset(paths, format="parquet").to_table(
            columns=["id", "text"], filter=pc.field("id").isin(list(wanted))
        )
        texts.update(zip(earlier["id"].to_pylist(), earlier["text"].to_pylist(), strict=True))
    examples: list[dict[str, Any]] = []
    for kind in KINDS[1:]:
        rows = [r for r in removed if r["dup_kind"] == kind and r["dup_of"] in texts]
        for row in sorted(rows, key=lambda r: r["id"])[:EXAMPLES_PER_KIND]:
            examples.append(
                {
                    "kind": kind,
                    "id": row["id"],
                    "text": truncate(row["text"], EXAMPLE_CHARS),
                    "dup_of": row["dup_of"],
                    "previous_text": truncate(texts[row["dup_of"]], EXAMPLE_CHARS),
                }
            )
    return examples


def against_html(against: dict[str, Any] | None) -> Html:
    """The predecessors, the removed counts per kind, and the examples."""
    if against is None:
        return Html("")
    names = ", ".join(str(p.get("path")) for p in against["predecessors"])
    clusters = "k-means refit on the union" if against["recluster"] else "their centroids"
    counts = table(
        ["removed against earlier datasets", "rows"],
        [[kind, against["removed"][kind]] for kind in KINDS],
        numeric=[1],
    )
    examples = table(
        ["kind", "removed row", "its text", "earlier row", "earlier text"],
        [
            [e["kind"], e["id"], e["text"], e["dup_of"], e["previous_text"]]
            for e in against["examples"]
        ],
    )
    return Html(
        heading("Removed against earlier datasets")
        + paragraph(
            f"Curated against {names} (clusters: {clusters}). Their rows were "
            "compared with, never changed; duplicate_id rows are rejects."
        )
        + counts
        + (examples if against["examples"] else "")
    )
