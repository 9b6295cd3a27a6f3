"""The curated-dataset contract, stated once (DESIGN.md, "The curated dataset contract").

* `batchcraft.dataset.layout`: where the files lie (manifest, shards, centroids, rejects).
* `batchcraft.dataset.schema`: schema version, column names and types, the rejects schema.
* `batchcraft.dataset.manifest`: reading and writing the manifest, listing shards.
* `batchcraft.dataset.arrays`: Arrow vector columns <-> numpy, with one null rule.
* `batchcraft.dataset.fields`: dataset columns and trainer feedback as selector Pool fields.
* `batchcraft.dataset.provenance`: the per-batch provenance record (service -> report).

The pipeline writes through these modules; the batcher, the report and the
service read through them. This package imports no other batchcraft part but
`batchcraft.errors` and `batchcraft._files`.
"""

from batchcraft.dataset.manifest import (
    DedupSettings,
    Shard,
    dedup_settings,
    list_rejects,
    list_shards,
    load_centroids,
    read_manifest,
    write_manifest,
)
from batchcraft.dataset.schema import (
    SCHEMA_VERSION,
    SUPPORTED_SCHEMA_VERSIONS,
    row_schema,
    similarity_threshold,
)

__all__ = [
    "SCHEMA_VERSION",
    "SUPPORTED_SCHEMA_VERSIONS",
    "DedupSettings",
    "Shard",
    "dedup_settings",
    "list_rejects",
    "list_shards",
    "load_centroids",
    "read_manifest",
    "row_schema",
    "similarity_threshold",
    "write_manifest",
]
