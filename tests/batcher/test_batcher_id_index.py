"""The id index: every served id found at its row, unknown ids not, also when hashes collide."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from batchcraft.batcher.id_index import IdIndex
from batchcraft.batcher.served_dataset import CuratedDataset
from batchcraft.dataset.hashing import string_hashes
from batchcraft.errors import DatasetError

IDS = ["", "a", "b", "ab", "ba", "doc-00017", "doc-000170", "ünïcode-✓", "x" * 300]
UNKNOWN = ["c", "abc", "doc-0001", "doc-00017 ", "ÜNÏCODE-✓", "x" * 299]


def poor_hash(ids: pa.Array) -> np.ndarray:
    """Three hash values for all ids: nearly every lookup meets a collision."""
    return string_hashes(ids) % np.uint64(3)


@pytest.mark.parametrize("hasher", [string_hashes, poor_hash])
def test_every_id_is_found_at_its_row_and_unknown_ids_are_not(hasher) -> None:  # type: ignore[no-untyped-def]
    index = IdIndex(pa.array(IDS), hasher)
    query = [*IDS[::-1], *UNKNOWN, IDS[3]]
    expected = [*range(len(IDS) - 1, -1, -1), *[-1] * len(UNKNOWN), 3]
    assert index.positions_of(query).tolist() == expected
    assert index.positions_of([]).tolist() == []


def test_an_unknown_id_with_a_served_ids_hash_is_unknown() -> None:
    index = IdIndex(pa.array(["a", "b"]), lambda ids: np.zeros(len(ids), np.uint64))
    assert index.positions_of(["b", "zz", "a"]).tolist() == [1, -1, 0]


def test_the_hash_reads_offsets_of_sliced_and_large_string_arrays() -> None:
    ids = pa.array(["pad", *IDS])
    expected = string_hashes(pa.array(IDS))
    assert (string_hashes(ids.slice(1)) == expected).all()
    assert (string_hashes(pa.array(IDS, pa.large_string())) == expected).all()
    assert len(set(expected.tolist())) == len(IDS)


def test_many_random_ids_agree_with_a_dict() -> None:
    rng = np.random.default_rng(0)
    ids = list(dict.fromkeys(f"{rng.integers(1 << 40):x}" for _ in range(50_000)))
    index = IdIndex(pa.array(ids))
    probe = [*rng.choice(ids, 1000), *(f"missing-{i}" for i in range(100))]
    where = {name: row for row, name in enumerate(ids)}
    assert index.positions_of(probe).tolist() == [where.get(name, -1) for name in probe]


@pytest.mark.parametrize("hasher", [string_hashes, poor_hash])
def test_duplicate_ids_are_refused(hasher) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DatasetError, match=r"duplicate ids, e\.g\. 'ab'"):
        IdIndex(pa.array(["a", "ab", "b", "ab"]), hasher)


def test_a_dataset_looks_ids_up_through_the_index(dataset: CuratedDataset) -> None:
    ids = dataset.ids
    positions = np.array([5, 0, len(ids) - 1])
    assert dataset.ids_at(positions) == ids[positions].tolist()
    assert dataset.positions_of([*ids[positions], "nope"]).tolist() == [*positions, -1]
