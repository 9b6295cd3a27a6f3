"""The files behind a served dataset: its Parquet shards, and the Arrow IPC cache file that
`CuratedDataset.open` memory-maps (`build_cache`, `mapped_rows`)."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from batchcraft._files import atomic_output
from batchcraft.dataset import layout
from batchcraft.dataset.manifest import Shard
from batchcraft.dataset.schema import KEEP, REQUIRED_COLUMNS
from batchcraft.errors import DatasetError

_CACHE_FORMAT = 1  # raise when the rows a cache file holds change for the same shards


def read_rows(root: Path, shards: list[Shard], kept_only: bool) -> pa.Table:
    """The rows of every shard in order, as one single-chunk table (on the heap: the
    shards decoded, then their copy as one chunk)."""
    tables = []
    for shard in shards:
        tables.append(read_shard(shard, kept_only))
        pa.default_memory_pool().release_unused()  # the decoder's scratch, before the next
    return _concatenated(root, tables)


def _concatenated(root: Path, tables: list[pa.Table]) -> pa.Table:
    """``tables`` as one single-chunk table (a copy of the rows)."""
    try:
        return pa.concat_tables(tables, promote_options="permissive").combine_chunks()
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DatasetError(f"dataset {root}: shards have incompatible schemas: {exc}") from exc
    except MemoryError as exc:  # ArrowMemoryError too
        raise DatasetError(
            f"not enough memory for the served rows of {root} ({exc}): the heap holds them "
            "once (to build the cache file, or to serve them without one)"
        ) from exc


def cache_key(roots: list[Path], shards: list[Shard], kept_only: bool) -> str:
    """A hash of what the served rows depend on: the manifests, each shard's identity."""
    digest = hashlib.sha256(layout.manifest_path(roots[0]).read_bytes())
    for root in roots[1:]:
        digest.update(layout.manifest_path(root).read_bytes())
    digest.update(f"{_CACHE_FORMAT}:{'kept' if kept_only else 'all'}".encode())
    for shard in shards:
        try:
            stat = shard.path.stat()
        except OSError as exc:
            raise DatasetError(f"cannot read shard {shard.path}: {exc}") from exc
        digest.update(f"{shard.path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def build_cache(path: Path, root: Path, shards: list[Shard], kept_only: bool) -> None:
    """Write the served rows of ``shards`` to the Arrow IPC file ``path`` as one record batch
    (what `mapped_rows` maps without a copy), holding them on the heap only once.

    Each shard is decoded on its own and staged to an IPC file beside ``path``; the staged
    files are mapped and concatenated (without a copy) and combined into the one batch (the
    copy). The heap's peak is then about the rows' bytes plus one shard's decoding, not
    every shard decoded plus their combination (which needed more than 5 GiB for 1.5 GiB).

    Raises:
        DatasetError: a shard is unusable, or the machine lacks the memory.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".staging-") as staging:
        staged = []
        for index, shard in enumerate(shards):
            table = read_shard(shard, kept_only)
            staged.append(Path(staging) / f"{index}.arrow")
            with pa.ipc.new_file(str(staged[-1]), table.schema) as writer:
                writer.write_table(table)
            del table
            pa.default_memory_pool().release_unused()
        table = _concatenated(root, [mapped_rows(file, combine=False) for file in staged])
        with (
            atomic_output(path, mode=0o644) as temporary,  # readable by other servers' users
            pa.ipc.new_file(str(temporary), table.schema) as writer,
        ):
            writer.write_table(table, max_chunksize=max(1, table.num_rows))
        del table  # served from the mapped file
    pa.default_memory_pool().release_unused()


def mapped_rows(path: Path, *, combine: bool = True) -> pa.Table:
    """The table of an Arrow IPC file, memory-mapped (no copy); ``combine``: as one chunk
    (a copy unless the file holds one record batch, as cache files do)."""
    try:
        table = pa.ipc.open_file(pa.memory_map(str(path))).read_all()
    except (OSError, pa.ArrowInvalid) as exc:
        raise DatasetError(
            f"cannot read dataset cache {path}: {exc}; delete it to rebuild"
        ) from exc
    return table if table.num_rows == 0 or not combine else table.combine_chunks()


def read_shard(shard: Shard, kept_only: bool) -> pa.Table:
    if not shard.path.is_file():
        raise DatasetError(f"shard {shard.path} is listed in the manifest but missing")
    try:
        table = pq.read_table(shard.path)
    except (OSError, pa.ArrowException) as exc:
        raise DatasetError(f"shard {shard.path} is corrupt or unreadable: {exc}") from exc
    missing = [column for column in REQUIRED_COLUMNS if column not in table.column_names]
    if missing:
        raise DatasetError(f"shard {shard.path} lacks required columns {missing}")
    if shard.num_rows >= 0 and table.num_rows != shard.num_rows:
        raise DatasetError(
            f"shard {shard.path} has {table.num_rows} rows, the manifest says {shard.num_rows}"
        )
    if kept_only and KEEP in table.column_names:
        table = table.filter(pc.fill_null(table.column(KEEP), False))
    return table
