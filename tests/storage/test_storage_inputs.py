"""Inputs through the filesystem layer, without Spark: compressed files read like plain
ones, a damaged one is a clear error, and a URL naming a store that is missing or cannot be
reached stops the command with exit code 2 before any Spark work."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from batchcraft.cli import main
from batchcraft.errors import InputError, StorageError
from batchcraft.pipeline.read.inputs import discover, input_columns, plan_chunks
from batchcraft.pipeline.read.parse import ColumnMapping, parse_chunk
from batchcraft.pipeline.read.readers import read_records
from batchcraft.storage import CorruptInput, resolve

RECORDS = [{"id": f"r{i}", "text": f"the text of record {i}", "n": i} for i in range(300)]
RECORDS.append({"id": "bad", "text": ""})  # rejected as missing_text, compressed or not


def _zstd(data: bytes) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, "zstd") as stream:
        stream.write(data)
    return sink.getvalue().to_pybytes()


COMPRESS = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress, ".zst": _zstd}
PLAIN = {
    "jsonl": "".join(json.dumps(r) + "\n" for r in RECORDS).encode(),
    "csv": ("id,text\n" + "".join(f'{r["id"]},"{r["text"]}"\n' for r in RECORDS)).encode(),
}


def _rows(paths: list[str]) -> list[tuple[Any, ...]]:
    rows = []
    for chunk in plan_chunks(discover(paths)):
        for batch in parse_chunk(chunk, ColumnMapping(id="id")):
            table = batch.to_pydict()
            rows += list(
                zip(table["id"], table["text"], table["reason"], table["source"], strict=True)
            )
    return sorted(rows, key=str)


@pytest.mark.parametrize("extension", sorted(COMPRESS))
@pytest.mark.parametrize("kind", sorted(PLAIN))
def test_a_compressed_file_gives_the_rows_of_the_plain_one(
    tmp_path: Path, kind: str, extension: str
) -> None:
    plain = tmp_path / "plain" / f"news.{kind}"
    packed = tmp_path / "packed" / f"news.{kind}{extension}"
    plain.parent.mkdir()
    packed.parent.mkdir()
    plain.write_bytes(PLAIN[kind])
    packed.write_bytes(COMPRESS[extension](PLAIN[kind]))
    (file,) = discover([str(packed)])
    assert (file.format, file.source) == (kind, "news")
    assert list(input_columns(file) or {}) == list(input_columns(discover([str(plain)])[0]) or {})
    assert len(plan_chunks([file])) == 1, "a compressed file is one whole-file chunk"
    assert _rows([str(packed)]) == _rows([str(plain)])
    assert sum(row[2] == "missing_text" for row in _rows([str(packed)])) == 1


def test_compressed_txt_files_in_a_directory_are_records(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt.gz").write_bytes(gzip.compress(b"first note"))
    (tmp_path / "notes" / "b.txt").write_bytes(b"second note")
    rows = _rows([str(tmp_path / "notes")])
    assert [(row[0], row[1]) for row in rows] == [
        ("a.txt.gz", "first note"),
        ("b.txt", "second note"),
    ]


def test_a_large_jsonl_file_is_split_but_a_compressed_one_is_not(tmp_path: Path) -> None:
    from batchcraft.pipeline.read import inputs

    data = PLAIN["jsonl"] * 4
    (tmp_path / "a.jsonl").write_bytes(data)
    (tmp_path / "b.jsonl.gz").write_bytes(gzip.compress(data))
    original = inputs.JSONL_CHUNK_BYTES
    inputs.JSONL_CHUNK_BYTES = 4096
    try:
        chunks = plan_chunks(discover([str(tmp_path)]))
    finally:
        inputs.JSONL_CHUNK_BYTES = original
    assert sum(c.path.endswith("a.jsonl") for c in chunks) > 1
    assert sum(c.path.endswith("b.jsonl.gz") for c in chunks) == 1


def test_a_truncated_gzip_stops_the_run_before_spark_with_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "news.jsonl.gz"
    path.write_bytes(gzip.compress(PLAIN["jsonl"])[:-40])
    with pytest.raises(InputError, match="ends early"):
        discover([str(path)])
    assert main(["curate", str(path), "--out", str(tmp_path / "out")]) == 2
    (error,) = cli_lines(capsys.readouterr().err)
    assert "news.jsonl.gz cannot be decompressed" in error
    assert not (tmp_path / "out").exists()


def test_damaged_gzip_bytes_are_named_as_damage(tmp_path: Path) -> None:
    packed = bytearray(gzip.compress(PLAIN["jsonl"]))
    packed[len(packed) // 2 : len(packed) // 2 + 16] = b"\xff" * 16
    (tmp_path / "news.jsonl.gz").write_bytes(bytes(packed))
    with pytest.raises(InputError, match="cannot be decompressed"):
        discover([str(tmp_path / "news.jsonl.gz")])


def test_an_executor_reading_a_truncated_file_fails_its_task_rather_than_losing_rows(
    tmp_path: Path,
) -> None:
    """Files past 1 GiB are not decompressed on the driver: the executor's reader must fail
    (a failed task fails the job, whose output is never published) rather than yield the
    rows before the damage as if they were the whole file."""
    path = tmp_path / "news.jsonl.gz"
    path.write_bytes(gzip.compress(PLAIN["jsonl"]))
    (chunk,) = plan_chunks(discover([str(path)]))
    path.write_bytes(gzip.compress(PLAIN["jsonl"])[:-40])  # damaged after planning
    with pytest.raises(CorruptInput, match="ends early"):
        list(read_records(chunk))


def test_parquet_inside_a_codec_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.parquet.gz").write_bytes(b"x")
    with pytest.raises(InputError, match="unsupported format"):
        discover([str(tmp_path / "a.parquet.gz")])


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("abfs://container/news.jsonl", "adlfs"),
        ("nosuchstore://bucket/news.jsonl", "not installed"),
    ],
)
def test_a_store_that_is_not_installed_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str, words: str
) -> None:
    with pytest.raises(StorageError, match=words):
        resolve(url)
    assert main(["curate", url, "--out", str(tmp_path / "out")]) == 2
    (error,) = cli_lines(capsys.readouterr().err)
    assert error.startswith("batchcraft curate: error:") and words in error


def test_an_unreachable_store_is_a_one_line_error_with_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")  # nothing listens on port 1
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    assert main(["curate", "s3://bucket/news.jsonl", "--out", str(tmp_path / "out")]) == 2
    (error,) = cli_lines(capsys.readouterr().err)
    assert "cannot reach s3://bucket/news.jsonl" in error


def test_urls_and_paths_resolve_to_a_filesystem_and_a_path(tmp_path: Path) -> None:
    local = resolve(str(tmp_path / "a.jsonl"))
    assert local.is_local and local.url == str(tmp_path / "a.jsonl")
    assert resolve(f"file://{tmp_path}/a.jsonl").path == local.path
    remote = resolve("s3://bucket/corpus/", {"endpoint_url": "http://127.0.0.1:9"})
    assert (remote.path, remote.url, remote.is_local) == (
        "bucket/corpus",
        "s3://bucket/corpus",
        False,
    )
    assert remote.join("a.jsonl.gz").url == "s3://bucket/corpus/a.jsonl.gz"
    assert remote.sibling(".corpus.staging-1").url == "s3://bucket/.corpus.staging-1"
    with pytest.raises(StorageError, match="not accepted"):
        resolve("s3://bucket/x", {"no_such_option": 1})


def cli_lines(stderr: str) -> list[str]:
    """The lines batchcraft wrote (its one-line error, or a traceback through its code):
    a Spark session another test stopped may have py4j log a closed-gateway traceback
    into this test's stderr from its own thread."""
    return [
        line
        for line in stderr.splitlines()
        if line.startswith("batchcraft") or "batchcraft/" in line
    ]
