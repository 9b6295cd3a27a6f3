"""`CuratedDataset`: the kept rows of a curated dataset directory, loaded for serving.

The directory follows the contract of `batchcraft.dataset` (manifest, shards
listed by `batchcraft.dataset.manifest.list_shards`). Every shard is opened and checked when the
dataset is opened, so a missing or corrupt file is reported at server start,
naming the file. Kept rows (``keep = true``) of all shards are concatenated,
in shard order, into one in-memory Arrow table; a row's *position* is its
index in that table.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from batchcraft._files import atomic_output, safe_file_name
from batchcraft.batcher.id_index import IdIndex
from batchcraft.dataset import layout
from batchcraft.dataset.arrays import matrix_view
from batchcraft.dataset.manifest import Shard, list_shards, read_manifest
from batchcraft.dataset.schema import ID, KEEP, REQUIRED_COLUMNS
from batchcraft.errors import DatasetError


class CuratedDataset:
    """The kept rows of one curated dataset, with id lookup and column projection.

    Build with `CuratedDataset.open`. ``table`` is a single-chunk Arrow table,
    so taking rows by position is one vectorised gather.
    """

    def __init__(self, name: str, root: Path, manifest: dict[str, Any], table: pa.Table) -> None:
        self.name = name
        self.root = root
        self.manifest = manifest
        self.table = table
        # in numpy, not Python strings: 12 bytes a row (`id_index`)
        try:
            self._index = IdIndex(_one_chunk(table.column(ID)))
        except DatasetError as exc:
            raise DatasetError(f"dataset {name!r} at {root}: {exc}") from exc
        self._projections: dict[tuple[str, ...], pa.RecordBatch] = {}
        self._matrices: dict[tuple[str, ...], list[np.ndarray] | None] = {}
        self._column_names = tuple(table.column_names)  # asked for on every pool build

    @classmethod
    def open(
        cls,
        root: str | Path,
        name: str | None = None,
        *,
        kept_only: bool = True,
        cache_dir: Path | None = None,
    ) -> CuratedDataset:
        """Read and validate the dataset at ``root``.

        Args:
            root: the curated dataset directory.
            name: registered name; defaults to the directory name.
            kept_only: drop rows with ``keep = false`` (removed duplicates).
            cache_dir: keep the served rows in an Arrow IPC file here and memory-map
                it: the rows then live in the OS page cache (shared by every server
                on the machine, paged out under pressure) instead of the heap, and a
                later open skips decoding Parquet. The file is named after a hash of
                the manifest and the shards' sizes and modification times, so a
                changed dataset gets a new one. None: rows are held in memory.

        Raises:
            DatasetError: naming the file that is missing, unreadable or
                inconsistent with the manifest.
        """
        root = Path(root)
        manifest = read_manifest(root)
        shards = list_shards(root, manifest)
        if not shards:
            raise DatasetError(f"dataset {root} has no shards under {layout.data_dir(root)}")
        name = name or root.resolve().name
        if cache_dir is None:
            return cls(name, root, manifest, _read_rows(root, shards, kept_only))
        path = (
            Path(cache_dir) / f"{safe_file_name(name)}-{_cache_key(root, shards, kept_only)}.arrow"
        )
        if path.exists():
            try:
                return cls(name, root, manifest, _mapped_rows(path))
            except DatasetError:
                path.unlink(missing_ok=True)  # torn by a crash: build it again
        table = _read_rows(root, shards, kept_only)
        with (
            atomic_output(path, mode=0o644) as temporary,  # readable by other servers' users
            pa.ipc.new_file(str(temporary), table.schema) as writer,
        ):
            writer.write_table(table, max_chunksize=max(1, table.num_rows))
        del table  # served from the mapped file from now on
        return cls(name, root, manifest, _mapped_rows(path))

    @property
    def num_rows(self) -> int:
        """Number of served (kept) rows."""
        return self.table.num_rows

    @property
    def column_names(self) -> list[str]:
        """Columns a client may request."""
        return list(self._column_names)

    @property
    def ids(self) -> np.ndarray:
        """Every served id, as a numpy array of Python strings: built on each call, for
        tests and small datasets (a server uses `ids_at` and `positions_of`)."""
        return np.asarray(self._index.ids.to_pylist(), dtype=object)

    def ids_at(self, positions: np.ndarray) -> list[str]:
        """The ids of the rows at ``positions``."""
        return self._index.ids.take(pa.array(positions, type=pa.int64())).to_pylist()

    def positions_of(self, ids: list[str] | np.ndarray) -> np.ndarray:
        """Positions of ``ids`` (int64); -1 for ids that are not served."""
        return self._index.positions_of(ids)

    def rows(self, positions: np.ndarray, columns: list[str]) -> pa.RecordBatch:
        """The rows at ``positions`` (in that order), projected on ``columns``.

        One gather per column straight into the returned batch (the projection
        is a cached zero-copy view of the single-chunk table).
        """
        return self._projection(columns).take(pa.array(positions, type=pa.int64()))

    def matrices(self, columns: list[str]) -> list[np.ndarray] | None:
        """Zero-copy numpy views of ``columns``, one row per position, or None.

        A column of a fixed-size list of numbers becomes a 2-D array, a numeric
        column a 1-D one. None when any column is of another type or holds
        nulls: such rows are gathered with `rows`. A ``numpy.take`` of these
        rows copies each row's bytes in one piece, which for wide vectors is
        faster than Arrow's ``take``.
        """
        key = tuple(columns)
        if key not in self._matrices:
            projection = self._projection(columns)
            found = [matrix_view(column) for column in projection.columns]
            usable = [m for m in found if m is not None]
            self._matrices[key] = usable if len(usable) == len(found) else None
        return self._matrices[key]

    def _projection(self, columns: list[str]) -> pa.RecordBatch:
        key = tuple(columns)
        found = self._projections.get(key)
        if found is None:
            table = self.table.select(columns).combine_chunks()
            batches = table.to_batches()
            found = batches[0] if batches else pa.RecordBatch.from_pylist([], schema=table.schema)
            self._projections[key] = found
        return found


_CACHE_FORMAT = 1  # raise when the rows a cache file holds change for the same shards


def _one_chunk(column: pa.ChunkedArray) -> pa.Array:
    """The column as one array (zero-copy when it is one chunk, as served tables are)."""
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _read_rows(root: Path, shards: list[Shard], kept_only: bool) -> pa.Table:
    """The rows of every shard in order, as one single-chunk table."""
    tables = [_read_shard(shard, kept_only) for shard in shards]
    try:
        return pa.concat_tables(tables, promote_options="permissive").combine_chunks()
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DatasetError(f"dataset {root}: shards have incompatible schemas: {exc}") from exc


def _cache_key(root: Path, shards: list[Shard], kept_only: bool) -> str:
    """A hash of what the served rows depend on: the manifest, each shard's identity."""
    digest = hashlib.sha256(layout.manifest_path(root).read_bytes())
    digest.update(f"{_CACHE_FORMAT}:{'kept' if kept_only else 'all'}".encode())
    for shard in shards:
        try:
            stat = shard.path.stat()
        except OSError as exc:
            raise DatasetError(f"cannot read shard {shard.path}: {exc}") from exc
        digest.update(f"{shard.path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def _mapped_rows(path: Path) -> pa.Table:
    """The single-chunk table of an Arrow IPC file, memory-mapped (no copy)."""
    try:
        table = pa.ipc.open_file(pa.memory_map(str(path))).read_all()
    except (OSError, pa.ArrowInvalid) as exc:
        raise DatasetError(
            f"cannot read dataset cache {path}: {exc}; delete it to rebuild"
        ) from exc
    return table if table.num_rows == 0 else table.combine_chunks()


def _read_shard(shard: Shard, kept_only: bool) -> pa.Table:
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
