"""`DatasetRegistry`: the datasets a server serves, by registered name."""

from __future__ import annotations

from collections.abc import Iterable

from batchcraft.batcher.errors import JobConflictError, UnknownDatasetError
from batchcraft.batcher.served_dataset import CuratedDataset
from batchcraft.errors import truncated_repr


class DatasetRegistry:
    """Datasets addressed by registered name (clients never send paths)."""

    def __init__(self, datasets: Iterable[CuratedDataset] = ()) -> None:
        self._datasets: dict[str, CuratedDataset] = {}
        for dataset in datasets:
            self.add(dataset)

    def add(self, dataset: CuratedDataset) -> None:
        """Register ``dataset`` under ``dataset.name``."""
        if dataset.name in self._datasets:
            raise JobConflictError(f"dataset name {dataset.name!r} is registered twice")
        self._datasets[dataset.name] = dataset

    def get(self, name: str) -> CuratedDataset:
        """The dataset registered as ``name``.

        Raises:
            UnknownDatasetError: listing the registered names.
        """
        try:
            return self._datasets[name]
        except KeyError:
            raise UnknownDatasetError(
                f"unknown dataset {truncated_repr(name)}; registered: {sorted(self._datasets)}"
            ) from None

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._datasets.values())

    def __len__(self) -> int:
        return len(self._datasets)
