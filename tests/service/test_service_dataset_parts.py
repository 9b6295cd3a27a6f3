"""`batchcraft serve --name news=PREV,DELTA`: a dataset and the delta curated against it
served as one dataset, through the flags, the config file and the selection workers."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from batchcraft.batcher.served_dataset import CuratedDataset
from batchcraft.errors import ConfigError
from batchcraft.service import BatchClient
from batchcraft.service.serve_arguments import add_serve_arguments
from batchcraft.service.serve_settings import apply_config_file, dataset_paths
from batchcraft.synth.curated import write_curated_dataset

pytestmark = pytest.mark.grpc


@pytest.fixture
def parts(dataset_parts: tuple[Path, Path]) -> tuple[Path, Path]:
    return dataset_parts


def parsed(tmp_path: Path, *flags: str, config: str | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    if config is not None:
        (tmp_path / "serve.toml").write_text(config)
        flags = (*flags, "--config", str(tmp_path / "serve.toml"))
    args = parser.parse_args(list(flags))
    if config is not None:
        apply_config_file(args)
    return args


def test_flags_and_config_name_several_directories_for_one_dataset(tmp_path: Path) -> None:
    args = parsed(
        tmp_path, "--name", "news=a,s3://b/delta", config='[datasets]\nweb = ["c", "d"]\n'
    )
    assert dataset_paths(args) == [("news", ["a", "s3://b/delta"]), ("web", ["c", "d"])]
    with pytest.raises(ConfigError, match=r"datasets\.web .* a path or a list of paths"):
        dataset_paths(parsed(tmp_path, config="[datasets]\nweb = [1]\n"))
    with pytest.raises(ConfigError, match="'news' names no directory"):
        dataset_paths(parsed(tmp_path, "--name", "news=,"))


def epoch_ids(address: str, selector: str) -> list[list[str]]:
    client = BatchClient(address, "news", selector, 8, columns=["id"], job=f"parts-{selector}",
                         seed=3)  # fmt: skip
    with client:
        return [list(batch["id"]) for batch in client]


def test_a_server_serves_both_directories_as_one_dataset(
    parts: tuple[Path, Path], server_process
) -> None:  # type: ignore[no-untyped-def]
    kept = [i for root in parts for i in CuratedDataset.open(root).ids.tolist()]
    joined = f"news={parts[0]},{parts[1]}"
    plain = server_process("--name", joined, "--selection-workers", "0")
    served = [i for batch in epoch_ids(plain.address, "uniform") for i in batch]
    assert sorted(served) == sorted(kept)  # every kept row of both, once
    assert any(i.startswith("new-") for i in served) and any(i.startswith("row-") for i in served)
    # the selection workers open the same directories the server did
    ahead = server_process("--name", joined, "--selection-workers", "1", "--lookahead", "4")
    assert epoch_ids(ahead.address, "concept") == epoch_ids(plain.address, "concept")


def test_a_dataset_of_incompatible_directories_is_a_one_line_error(
    parts: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from batchcraft.service.cli import serve_main

    wide = write_curated_dataset(tmp_path / "wide", num_rows=10, dim=16, id_prefix="w")
    assert serve_main(["--name", f"news={parts[0]},{wide}", "--port", "0"]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if "batchcraft" in line]
    assert len(lines) == 1 and "embedding dimension 16 differs from 8" in lines[0], lines
