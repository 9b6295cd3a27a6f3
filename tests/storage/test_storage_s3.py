"""The filesystem layer against a real S3-compatible server (moto's, on loopback): listing
and globs, the atomic-output promise (staging prefix, manifest published last, killed
runs' leftovers removed) and local copies of published datasets."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest
from s3_server import S3Server
from test_storage_inputs import cli_lines

from batchcraft.dataset.remote import local_dataset
from batchcraft.errors import DatasetError, InputError, OutputError
from batchcraft.pipeline.read.inputs import discover
from batchcraft.pipeline.write.files import OWNER_FILE
from batchcraft.pipeline.write.publish import StagedPrefix, remove_stale_prefixes
from batchcraft.storage import kind, list_files, read_bytes, resolve, write_bytes

LINE = b'{"id": "a", "text": "hello"}\n'


def _put(url: str, data: bytes) -> None:
    write_bytes(resolve(url), data)


def _names(url: str) -> list[str]:
    root = resolve(url)
    return [file.path[len(root.path) + 1 :] for file in list_files(root)]


def test_a_prefix_lists_recursively_and_a_glob_matches_within_a_segment(
    s3_server: S3Server,
) -> None:
    bucket = s3_server.new_bucket()
    for key in ("corpus/a.jsonl.gz", "corpus/b.jsonl", "corpus/sub/c.jsonl", "corpus/notes.md"):
        _put(f"s3://{bucket}/{key}", gzip.compress(LINE) if key.endswith(".gz") else LINE)
    listed = discover([f"s3://{bucket}/corpus/"])
    assert [f.path for f in listed] == [
        f"s3://{bucket}/corpus/a.jsonl.gz",
        f"s3://{bucket}/corpus/b.jsonl",
        f"s3://{bucket}/corpus/sub/c.jsonl",
    ]
    globbed = discover([f"s3://{bucket}/corpus/*.jsonl*"])
    assert [f.source for f in globbed] == ["a", "b"]
    with pytest.raises(InputError, match="does not exist"):
        discover([f"s3://{bucket}/nothing.jsonl"])
    with pytest.raises(InputError, match="matches no file"):
        discover([f"s3://{bucket}/corpus/*.csv"])


def _stage(out: str, files: dict[str, bytes], overwrite: bool = False) -> None:
    with StagedPrefix(resolve(out), overwrite) as staged:
        for name, data in files.items():
            write_bytes(staged.location.join(name), data)


def test_a_dataset_is_published_whole_with_its_manifest_and_no_staging_left(
    s3_server: S3Server,
) -> None:
    bucket = s3_server.new_bucket()
    out = f"s3://{bucket}/curated/news"
    _stage(out, {"data/part-00000.parquet": b"rows", "manifest.json": b"{}"})
    assert sorted(_names(f"s3://{bucket}/curated")) == [
        "news/data/part-00000.parquet",
        "news/manifest.json",
    ]
    with pytest.raises(OutputError, match="already exists"):
        StagedPrefix(resolve(out))
    _stage(out, {"data/part-00001.parquet": b"new", "manifest.json": b"{2}"}, overwrite=True)
    assert sorted(_names(out)) == ["data/part-00001.parquet", "manifest.json"]  # old rows gone
    assert read_bytes(resolve(f"{out}/manifest.json")) == b"{2}"


def test_a_failed_run_publishes_nothing_and_removes_its_staging_prefix(s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket()
    with pytest.raises(RuntimeError), StagedPrefix(resolve(f"s3://{bucket}/news")) as staged:
        write_bytes(staged.location.join("data/part-00000.parquet"), b"half written")
        raise RuntimeError("the job failed")
    assert _names(f"s3://{bucket}") == []


def test_a_killed_runs_staging_prefix_is_removed_by_the_next_run(
    s3_server: S3Server, tmp_path: Path
) -> None:
    bucket = s3_server.new_bucket()
    out = f"s3://{bucket}/news"
    script = (
        "import os\n"
        "from batchcraft.pipeline.write.publish import StagedPrefix\n"
        "from batchcraft.storage import resolve, write_bytes\n"
        f"staged = StagedPrefix(resolve({out!r})).__enter__()\n"
        "write_bytes(staged.location.join('data/task-00000.parquet'), b'rows')\n"
        "print(staged.location.url, flush=True)\n"
        "os._exit(0)  # killed: no __exit__ runs\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=os.environ
    )
    orphan = result.stdout.strip()
    assert f"{orphan.rsplit('/', 1)[1]}/{OWNER_FILE}" in _names(f"s3://{bucket}")
    live = f"s3://{bucket}/.news.staging-live"  # a run of this process: still going
    _put(f"{live}/{OWNER_FILE}", f"{os.uname().nodename} {os.getpid()}\n".encode())
    assert remove_stale_prefixes(resolve(out)) == [resolve(orphan)]
    _stage(out, {"manifest.json": b"{}"})
    assert sorted(_names(f"s3://{bucket}")) == [
        f".news.staging-live/{OWNER_FILE}",
        "news/manifest.json",
    ]


def test_a_directory_without_a_manifest_is_no_dataset_and_a_copy_is_reused(
    s3_server: S3Server, tmp_path: Path
) -> None:
    bucket = s3_server.new_bucket()
    out = f"s3://{bucket}/news"
    _put(f"{out}/data/part-00000.parquet", b"rows")  # a publish under way: no manifest yet
    with pytest.raises(DatasetError, match=r"holds no manifest\.json"):
        local_dataset(out, cache_root=tmp_path)
    _put(f"{out}/manifest.json", b"{1}")
    copy = local_dataset(out, cache_root=tmp_path)
    assert (copy / "data" / "part-00000.parquet").read_bytes() == b"rows"
    (copy / "marker").write_text("still the same copy")
    assert local_dataset(out, cache_root=tmp_path) == copy and (copy / "marker").exists()
    _put(f"{out}/manifest.json", b"{2}")  # republished: copied again
    assert not (local_dataset(out, cache_root=tmp_path) / "marker").exists()
    assert kind(resolve(out)).name == "Directory"


def test_refused_credentials_are_a_one_line_error_with_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from s3_server import checking_s3_server

    from batchcraft.cli import main

    with checking_s3_server() as server:
        monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "nobody")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
        code = main(["curate", "s3://bucket/news.jsonl.gz", "--out", str(tmp_path / "out")])
    lines = cli_lines(capsys.readouterr().err)
    assert code == 2 and len(lines) == 1, lines
    assert "access to s3://bucket/news.jsonl.gz refused" in lines[0] and "credentials" in lines[0]
    assert not (tmp_path / "out").exists()


def test_no_credentials_at_all_are_a_one_line_error_with_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from s3_server import checking_s3_server

    from batchcraft.cli import main

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance to ask either
    with checking_s3_server() as server:
        monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
        code = main(["curate", "s3://bucket/news.jsonl.gz", "--out", str(tmp_path / "out")])
    lines = cli_lines(capsys.readouterr().err)
    assert code == 2 and len(lines) == 1, lines
    # moto answers an unsigned request with HTTP 500 (AWS with 403, told as "refused")
    assert "error: " in lines[0] and "s3://bucket/news.jsonl.gz" in lines[0], lines
    assert not (tmp_path / "out").exists()


def test_a_store_failing_mid_publish_is_a_one_line_output_error(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    from batchcraft.pipeline.write import publish

    def failing(staging: object, final: object) -> None:
        raise OSError("AWS Error NETWORK_CONNECTION during CopyObject operation:\ncurlCode: 7")

    bucket = s3_server.new_bucket()
    monkeypatch.setattr(publish, "publish", failing)
    with pytest.raises(OutputError) as raised:
        _stage(f"s3://{bucket}/news", {"manifest.json": b"{}"})
    assert "\n" not in str(raised.value) and "readers see no dataset" in str(raised.value)
    assert _names(f"s3://{bucket}") == [], "the staging prefix is removed all the same"
