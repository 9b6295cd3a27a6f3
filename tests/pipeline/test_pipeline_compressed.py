"""A damaged compressed input that only an executor finds (files past the driver's 1 GiB
check) ends the job with the same one-line error as the driver's check, and publishes
nothing."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from batchcraft.errors import InputError

pytestmark = pytest.mark.spark


def test_a_truncated_gzip_found_by_an_executor_is_a_one_line_input_error(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from batchcraft.pipeline import curate
    from batchcraft.pipeline.read import discovery

    lines = "".join(json.dumps({"id": str(i), "text": f"record {i}"}) + "\n" for i in range(5000))
    (tmp_path / "news.jsonl.gz").write_bytes(gzip.compress(lines.encode())[:-200])
    monkeypatch.setattr(discovery, "_FULL_HASH_LIMIT", 0)  # as if it were past 1 GiB
    with pytest.raises(InputError) as raised:
        curate(str(tmp_path / "news.jsonl.gz"), str(tmp_path / "out"), spark=spark,
               id_column="id", write_report=False)  # fmt: skip
    message = str(raised.value)
    assert message.startswith(f"input {tmp_path / 'news.jsonl.gz'} cannot be decompressed")
    assert "ends early" in message and "\n" not in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["news.jsonl.gz"], "nothing published"
