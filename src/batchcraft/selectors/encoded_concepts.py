"""`EncodedConcepts`: a concepts column as integer codes, encoded once and gathered cheaply."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True, eq=False)
class EncodedConcepts:
    """Rows' concept lists as integer codes into one shared vocabulary (CSR layout).

    Encode a dataset's column once with `from_lists`; gathering a pool's rows
    (``encoded[positions]``) is then one vectorised copy, and
    `ConceptRows.from_pool_column` reads the codes instead of re-hashing
    every name. Indexing with an int gives that row's list of names.

    Attributes:
        starts: (n + 1,) offset of each row's first code.
        codes: each row's codes, in list order (duplicates kept, as in the lists).
        names: the name of each code.

    Example:
        >>> encoded = EncodedConcepts.from_lists([["cat"], None, ["dog", "cat"]])
        >>> pool_rows = encoded[np.array([2, 0])]
        >>> pool_rows[0], len(pool_rows)
        (['dog', 'cat'], 2)
    """

    starts: np.ndarray
    codes: np.ndarray
    names: list[Any]

    @classmethod
    def from_lists(cls, rows: Sequence[Sequence[Any] | None]) -> EncodedConcepts:
        """Encode lists of names (None rows count as empty)."""
        lengths = [0 if row is None else len(row) for row in rows]
        ids: dict[Any, int] = {}
        setdefault = ids.setdefault
        codes = [setdefault(name, len(ids)) for row in rows if row is not None for name in row]
        starts = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=starts[1:])
        return cls(starts, np.asarray(codes, dtype=np.int64), list(ids))

    @classmethod
    def from_arrow(cls, column: pa.Array) -> EncodedConcepts:
        """Encode a list-of-strings Arrow column (null rows count as empty), vectorised in
        Arrow: the same starts, codes and names as `from_lists` of its Python lists
        (codes in order of first appearance, a null name a code of its own), without
        making a Python object per name (40,000 rows: about 1 ms against 40)."""
        lengths = pc.list_value_length(column).fill_null(0).to_numpy(zero_copy_only=False)
        encoded = pc.dictionary_encode(pc.list_flatten(column), null_encoding="encode")
        starts = np.zeros(len(column) + 1, dtype=np.int64)
        np.cumsum(lengths, out=starts[1:])
        codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
        return cls(starts, codes, encoded.dictionary.to_pylist())

    def __len__(self) -> int:
        return len(self.starts) - 1

    @overload
    def __getitem__(self, index: int) -> list[Any]: ...

    @overload
    def __getitem__(self, index: np.ndarray) -> EncodedConcepts: ...

    def __getitem__(self, index: int | np.ndarray) -> list[Any] | EncodedConcepts:
        if isinstance(index, int | np.integer):
            row = range(len(self))[index]
            return [
                self.names[code] for code in self.codes[self.starts[row] : self.starts[row + 1]]
            ]
        positions = np.arange(len(self))[index]  # also checks the bounds
        lengths = self.starts[positions + 1] - self.starts[positions]
        starts = np.zeros(len(positions) + 1, dtype=np.int64)
        np.cumsum(lengths, out=starts[1:])
        entries = np.arange(starts[-1]) + np.repeat(self.starts[positions] - starts[:-1], lengths)
        return EncodedConcepts(starts, self.codes[entries], self.names)

    def row_codes(self) -> tuple[np.ndarray, np.ndarray, list[Any]]:
        """(row of each entry, code of each entry renumbered by first appearance, names).

        The same numbering as encoding the lists afresh: codes in order of their
        first appearance, row after row.
        """
        rows = np.repeat(np.arange(len(self), dtype=np.int64), np.diff(self.starts))
        present, first, inverse = np.unique(self.codes, return_index=True, return_inverse=True)
        by_appearance = np.argsort(first)
        renumbered = np.empty(len(present), dtype=np.int64)
        renumbered[by_appearance] = np.arange(len(present))
        names = [self.names[code] for code in present[by_appearance].tolist()]
        return rows, renumbered[inverse.reshape(-1)], names
