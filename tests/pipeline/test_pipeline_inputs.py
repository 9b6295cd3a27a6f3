"""Input checks that stop the job before any Spark work."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchcraft.errors import InputError
from batchcraft.pipeline.read.inputs import check_columns, discover, position_words


def test_missing_path_names_it(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        discover([str(tmp_path / "nope.jsonl")])


def test_glob_matching_nothing(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="matches no file"):
        discover([str(tmp_path / "*.jsonl")])


def test_unsupported_format(tmp_path: Path) -> None:
    (tmp_path / "corpus.xml").write_text("<a/>")
    with pytest.raises(InputError, match="unsupported format"):
        discover([str(tmp_path / "corpus.xml")])


def test_wrong_column_lists_available_columns(tmp_path: Path) -> None:
    (tmp_path / "c.jsonl").write_text('{"id": 1, "body": "x"}\n')
    files = discover([str(tmp_path / "c.jsonl")])
    with pytest.raises(InputError, match=r"--text-column 'text' not found .*\['body', 'id'\]"):
        check_columns(files, {"--text-column": "text"})


def test_wrong_csv_and_parquet_columns(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "c.csv").write_text("id,body\n1,x\n")
    pq.write_table(pa.table({"id": ["1"], "body": ["x"]}), tmp_path / "c.parquet")
    for name in ("c.csv", "c.parquet"):
        with pytest.raises(InputError, match="'answer' not found"):
            check_columns(
                discover([str(tmp_path / name)]),
                {"--text-column": "body", "--pair-column": "answer"},
            )


def test_corrupt_parquet_is_reported(tmp_path: Path) -> None:
    (tmp_path / "c.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(InputError, match=r"cannot read input .*c\.parquet"):
        check_columns(discover([str(tmp_path / "c.parquet")]), {"--text-column": "text"})


def test_sources_and_fingerprints(tmp_path: Path) -> None:
    (tmp_path / "web.jsonl").write_text('{"text": "a"}\n')
    (tmp_path / "books.jsonl").write_text('{"text": "b"}\n')
    files = discover([str(tmp_path / "*.jsonl")])
    assert [f.source for f in files] == ["books", "web"]
    assert all(len(f.sha256) == 64 for f in files)
    assert [f.source for f in discover([str(tmp_path / "web.jsonl")], source="crawl")] == ["crawl"]


def test_txt_inputs_only_have_text_and_id(tmp_path: Path) -> None:
    # Caught before Spark: otherwise every .txt record would be rejected at run time.
    (tmp_path / "a.txt").write_text("one document")
    files = discover([str(tmp_path / "a.txt")])
    check_columns(files, {"--text-column": "text", "--id-column": "id"})
    for flag, column in [("--text-column", "body"), ("--pair-column", "answer")]:
        with pytest.raises(InputError, match=rf"{flag} '{column}' does not apply to .*a\.txt"):
            check_columns(files, {"--text-column": "text", flag: column})


def test_position_words_name_the_file_for_every_format(tmp_path: Path) -> None:
    for name in ("a.txt", "b.txt", "c.jsonl"):
        (tmp_path / name).write_text('{"text": "x"}\n')
    files = discover([str(tmp_path)])
    for record, file in enumerate(files):
        before, after = position_words(file)
        assert file.path in before + str(record) + after
