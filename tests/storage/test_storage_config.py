"""Where users name stores: the curate config file's storage_options table, serve's dataset
URLs and checkpoint directories, and the server directories that must stay local."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from batchcraft.curation import add_curate_arguments, curate_config
from batchcraft.errors import ConfigError
from batchcraft.service.cli import provenance_dir
from batchcraft.service.serve_arguments import add_serve_arguments
from batchcraft.service.serve_settings import apply_config_file, dataset_paths


def test_the_config_files_storage_options_table_reaches_the_job_and_hides_secrets(
    tmp_path: Path,
) -> None:
    config_file = tmp_path / "curate.toml"
    config_file.write_text(
        '[curate]\nid_column = "id"\n'
        '[curate.storage_options]\nendpoint_url = "http://minio:9000"\nsecret_key = "s3cr3t"\n'
    )
    parser = argparse.ArgumentParser()
    add_curate_arguments(parser)
    args = parser.parse_args(["s3://b/in/", "--out", "s3://b/out", "--config", str(config_file)])
    config = curate_config(args)
    assert config.storage_options == {"endpoint_url": "http://minio:9000", "secret_key": "s3cr3t"}
    assert config.inputs == ("s3://b/in/",) and config.out == "s3://b/out"
    recorded = config.to_dict()["storage_options"]
    assert recorded == {"endpoint_url": "http://minio:9000", "secret_key": "<redacted>"}


def _serve_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    return parser.parse_args(list(argv))


def test_serve_keeps_dataset_urls_whole_and_names_them_after_their_last_part() -> None:
    args = _serve_args("s3://bucket/curated/news", "--name", "old=s3://bucket/curated/old")
    assert dataset_paths(args) == [
        ("news", ["s3://bucket/curated/news"]),
        ("old", ["s3://bucket/curated/old"]),
    ]


def test_a_checkpoint_directory_on_a_store_is_kept_whole_not_made_locally(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    args = _serve_args("data", "--checkpoint-dir", "s3://bucket/state")
    assert args.checkpoint_dir == "s3://bucket/state"
    assert provenance_dir(args) is None  # the provenance log is local: no default on a store
    config_file = tmp_path / "serve.toml"
    config_file.write_text('checkpoint_dir = "s3://bucket/state"\nprovenance_dir = "s3://b/p"\n')
    with pytest.raises(ConfigError, match=r"provenance_dir = 's3://b/p' .*must be a local path"):
        apply_config_file(_serve_args("data", "--config", str(config_file)))
    config_file.write_text('checkpoint_dir = "s3://bucket/state"\n')
    from_file = _serve_args("data", "--config", str(config_file))
    apply_config_file(from_file)
    assert from_file.checkpoint_dir == "s3://bucket/state"
    assert list(tmp_path.iterdir()) == [config_file], "no local directory named s3:"
