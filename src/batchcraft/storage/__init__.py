"""One filesystem layer for every path a user gives: local paths and ``file://``, ``s3://``,
``gs://``, ``hdfs://``, and any fsspec URL, as pyarrow filesystems; compressed files.

Imports nothing of batchcraft but errors and file helpers (an import-linter contract)."""

from batchcraft.storage.compression import (
    CODECS,
    DECODE_ERRORS,
    CorruptInput,
    codec_of,
    damage,
    decompressing,
    without_codec,
)
from batchcraft.storage.files import (
    expand_glob,
    kind,
    list_files,
    open_input,
    open_records,
    read_bytes,
    relative,
    remove_tree,
    write_bytes,
)
from batchcraft.storage.locations import Location, StorageOptions, is_url, redacted, resolve

__all__ = [
    "CODECS",
    "DECODE_ERRORS",
    "CorruptInput",
    "Location",
    "StorageOptions",
    "codec_of",
    "damage",
    "decompressing",
    "expand_glob",
    "is_url",
    "kind",
    "list_files",
    "open_input",
    "open_records",
    "read_bytes",
    "redacted",
    "relative",
    "remove_tree",
    "resolve",
    "without_codec",
    "write_bytes",
]
