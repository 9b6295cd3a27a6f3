"""`CuratedDataset`: the kept rows of a curated dataset directory, loaded for serving.

The directory follows the contract of `batchcraft.dataset` (manifest, shards
listed by `batchcraft.dataset.manifest.list_shards`). Every shard is opened and checked when the
dataset is opened, so a missing or corrupt file is reported at server start,
naming the file. Kept rows (``keep = true``) of all shards are concatenated,
in shard order, into one single-chunk Arrow table, memory-mapped from a cache
file (`batchcraft.batcher.dataset_files`) or on the heap; a row's *position*
is its index in that table. Ids are looked up through an `IdIndex` (numpy).

One served dataset may be made of several directories (`curate NEW --against PREV`
writes only the new rows: PREV and the delta together are the dataset): their kept rows
are concatenated in the order given, and `parts` checks that they can be served as one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa

from batchcraft._files import safe_file_name
from batchcraft.batcher.dataset_files import build_cache, cache_key, mapped_rows, read_rows
from batchcraft.batcher.dataset_parts import open_parts
from batchcraft.batcher.id_index import IdIndex
from batchcraft.dataset.arrays import matrix_view
from batchcraft.dataset.schema import ID
from batchcraft.errors import DatasetError

_T = TypeVar("_T")


class CuratedDataset:
    """The kept rows of one curated dataset, with id lookup and column projection.

    Build with `CuratedDataset.open`. ``table`` is a single-chunk Arrow table,
    so taking rows by position is one vectorised gather.
    """

    def __init__(
        self,
        name: str,
        roots: Sequence[Path],
        manifests: Sequence[dict[str, Any]],
        table: pa.Table,
    ) -> None:
        self.name = name
        self.roots = tuple(roots)
        self.root = self.roots[0]  # for messages: the first (oldest) part
        self.manifests = tuple(manifests)
        self.manifest = self.manifests[0]  # the embedding and contract of every part
        self.table = table
        # in numpy, not Python strings: 12 bytes a row (`id_index`)
        try:
            self._index = IdIndex(_one_chunk(table.column(ID)))
        except DatasetError as exc:
            where = ", ".join(str(root) for root in self.roots)
            raise DatasetError(f"dataset {name!r} at {where}: {exc}") from exc
        self._projections: dict[tuple[str, ...], pa.RecordBatch] = {}
        self._matrices: dict[tuple[str, ...], list[np.ndarray] | None] = {}
        self._derived: dict[str, Any] = {}  # `derived`
        self._derived_lock = threading.Lock()
        self._column_names = tuple(table.column_names)  # asked for on every pool build

    @classmethod
    def open(
        cls,
        root: str | Path | Sequence[str | Path],
        name: str | None = None,
        *,
        kept_only: bool = True,
        cache_dir: Path | None = None,
    ) -> CuratedDataset:
        """Read and validate the dataset at ``root``.

        Args:
            root: the curated dataset directory, or several (a dataset and the deltas
                curated against it, oldest first) served as one.
            name: registered name; defaults to the (first) directory's name.
            kept_only: drop rows with ``keep = false`` (removed duplicates).
            cache_dir: keep the served rows in an Arrow IPC file here and memory-map
                it: the rows then live in the OS page cache (shared by every server
                on the machine, paged out under pressure) instead of the heap, and a
                later open skips decoding Parquet. The file is named after a hash of
                the manifests and the shards' sizes and modification times, so a
                changed dataset gets a new one. None: rows are held in memory.

        Raises:
            DatasetError: naming the file that is missing, unreadable or
                inconsistent with the manifest, or parts that cannot be served together.
        """
        roots = [Path(root)] if isinstance(root, (str, Path)) else [Path(r) for r in root]
        parts = open_parts(roots)
        name = name or roots[0].resolve().name
        manifests = [part.manifest for part in parts]
        shards = [shard for part in parts for shard in part.shards]
        if cache_dir is None:
            table = read_rows(roots[0], shards, kept_only)
            pa.default_memory_pool().release_unused()  # Parquet decoding's scratch
            return cls(name, roots, manifests, table)
        key = cache_key(roots, shards, kept_only)
        path = Path(cache_dir) / f"{safe_file_name(name)}-{key}.arrow"
        if path.exists():
            try:
                return cls(name, roots, manifests, mapped_rows(path))
            except DatasetError:
                path.unlink(missing_ok=True)  # torn by a crash: build it again
        build_cache(path, roots[0], shards, kept_only)
        return cls(name, roots, manifests, mapped_rows(path))

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

    def derived(self, key: str, make: Callable[[], _T]) -> _T:
        """``make()``, made once per dataset under ``key`` and shared by every caller
        (every job of the dataset: e.g. a column converted to a selector's pool field)."""
        with self._derived_lock:
            if key not in self._derived:
                self._derived[key] = make()
            found: _T = self._derived[key]
            return found

    def _projection(self, columns: list[str]) -> pa.RecordBatch:
        key = tuple(columns)
        found = self._projections.get(key)
        if found is None:
            table = self.table.select(columns).combine_chunks()
            batches = table.to_batches()
            found = batches[0] if batches else pa.RecordBatch.from_pylist([], schema=table.schema)
            self._projections[key] = found
        return found


def _one_chunk(column: pa.ChunkedArray) -> pa.Array:
    """The column as one array (zero-copy when it is one chunk, as served tables are)."""
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
