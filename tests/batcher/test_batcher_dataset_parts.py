"""A dataset served from several directories (a dataset and the deltas curated against
it): rows in the order given, one id space, one fingerprint, and refusals that name why."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from batchcraft.batcher.checkpoint import dataset_fingerprint
from batchcraft.batcher.served_dataset import CuratedDataset
from batchcraft.dataset.arrays import to_matrix
from batchcraft.errors import DatasetError
from batchcraft.synth.curated import write_curated_dataset


@pytest.fixture
def parts(dataset_parts: tuple[Path, Path]) -> tuple[Path, Path]:
    return dataset_parts


@pytest.mark.parametrize("cached", [False, True])
def test_parts_are_served_as_one_dataset_in_the_order_given(
    parts: tuple[Path, Path], tmp_path: Path, cached: bool
) -> None:
    prev, delta = (CuratedDataset.open(root) for root in parts)
    both = CuratedDataset.open(list(parts), "news", cache_dir=tmp_path if cached else None)
    assert both.num_rows == prev.num_rows + delta.num_rows == 48 + 19
    assert both.ids.tolist() == prev.ids.tolist() + delta.ids.tolist()
    positions = both.positions_of(["row-000000", "new-000000", "new-000003", "nope"])
    assert positions.tolist() == [0, prev.num_rows, -1, -1]  # new-000003 was removed
    gathered = to_matrix(both.rows(np.array([1, prev.num_rows + 1]), ["embedding"]).column(0))
    expected = [to_matrix(prev.rows(np.array([1]), ["embedding"]).column(0))[0]]
    expected.append(to_matrix(delta.rows(np.array([1]), ["embedding"]).column(0))[0])
    np.testing.assert_array_equal(gathered, np.stack(expected))
    assert both.roots == parts and both.root == parts[0]


def test_the_fingerprint_names_every_part_and_a_single_directory_keeps_its_own(
    parts: tuple[Path, Path],
) -> None:
    prev = CuratedDataset.open(parts[0])
    both = CuratedDataset.open(list(parts))
    assert dataset_fingerprint(prev) != dataset_fingerprint(both)
    # checkpoints saved against one directory stay valid: its fingerprint is unchanged
    assert dataset_fingerprint(prev) == dataset_fingerprint(CuratedDataset.open([parts[0]]))
    reordered = CuratedDataset.open([parts[1], parts[0]])
    assert dataset_fingerprint(reordered) != dataset_fingerprint(both)  # positions differ


def test_parts_that_cannot_be_served_together_are_refused(
    parts: tuple[Path, Path], tmp_path: Path
) -> None:
    prev, _ = parts
    with pytest.raises(DatasetError, match="named twice"):
        CuratedDataset.open([prev, prev])
    wide = write_curated_dataset(tmp_path / "wide", num_rows=10, dim=16, id_prefix="w")
    with pytest.raises(DatasetError, match=r"wide cannot be served with .*embedding dimension 16"):
        CuratedDataset.open([prev, wide])
    same_ids = write_curated_dataset(tmp_path / "same", num_rows=10, seed=3)
    with pytest.raises(DatasetError, match=r"duplicate ids, e\.g\. .row-0000"):
        CuratedDataset.open([prev, same_ids])
    other_model = write_curated_dataset(tmp_path / "model", num_rows=10, id_prefix="m")
    manifest = json.loads((other_model / "manifest.json").read_text())
    manifest["embedding"]["model"] = "another-model"
    (other_model / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DatasetError, match="embedding model 'another-model'"):
        CuratedDataset.open([prev, other_model])
