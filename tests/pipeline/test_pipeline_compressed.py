"""A damaged compressed input that only an executor finds (a local file past the driver's
1 GiB check, any file in a store) ends the job with the same one-line error as the
driver's check, and publishes nothing."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from s3_server import S3Server

from batchcraft.errors import InputError
from batchcraft.storage import list_files, resolve, write_bytes

pytestmark = pytest.mark.spark
LINES = "".join(json.dumps({"id": str(i), "text": f"record {i}"}) + "\n" for i in range(5000))
TRUNCATED = gzip.compress(LINES.encode())[:-200]  # more lines than the driver's column sniff


def test_a_truncated_gzip_found_by_an_executor_is_a_one_line_input_error(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from batchcraft.pipeline import curate
    from batchcraft.pipeline.read import discovery

    (tmp_path / "news.jsonl.gz").write_bytes(TRUNCATED)
    monkeypatch.setattr(discovery, "_FULL_HASH_LIMIT", 0)  # as if it were past 1 GiB
    with pytest.raises(InputError) as raised:
        curate(str(tmp_path / "news.jsonl.gz"), str(tmp_path / "out"), spark=spark,
               id_column="id", write_report=False)  # fmt: skip
    message = str(raised.value)
    assert message.startswith(f"input {tmp_path / 'news.jsonl.gz'} cannot be decompressed")
    assert "ends early" in message and "\n" not in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["news.jsonl.gz"], "nothing published"


def test_a_truncated_gzip_in_a_store_is_found_by_its_executor_and_publishes_nothing(
    spark: Any, s3_server: S3Server
) -> None:
    """The driver reads only the head and tail of a file in a store: the executor reading
    the file finds the damage, with the same one-line error."""
    from batchcraft.pipeline import curate

    bucket = s3_server.new_bucket()
    write_bytes(resolve(f"s3://{bucket}/corpus/news.jsonl.gz"), TRUNCATED)
    with pytest.raises(InputError) as raised:
        curate(f"s3://{bucket}/corpus/", f"s3://{bucket}/out", spark=spark, id_column="id",
               write_report=False, storage_options=s3_server.options)  # fmt: skip
    message = str(raised.value)
    assert message.startswith(f"input s3://{bucket}/corpus/news.jsonl.gz cannot be decompressed")
    assert "\n" not in message
    assert [f.url for f in list_files(resolve(f"s3://{bucket}"))] == [
        f"s3://{bucket}/corpus/news.jsonl.gz"
    ], "no dataset, no staging prefix"
