"""The command line: clear errors and non-zero exits before any Spark work."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from batchcraft.cli import main


def test_wrong_column_fails_fast_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "c.jsonl").write_text('{"id": "1", "body": "hello"}\n')
    start = time.perf_counter()
    code = main(["curate", str(tmp_path / "c.jsonl"), "--out", str(tmp_path / "out")])
    assert code == 2
    assert "--text-column 'text' not found" in capsys.readouterr().err
    assert time.perf_counter() - start < 5, "no SparkSession may be started for a user error"
    assert not (tmp_path / "out").exists()


def test_unreadable_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["curate", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "out")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_existing_output_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "c.jsonl").write_text('{"text": "hello"}\n')
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("precious")
    assert main(["curate", str(tmp_path / "c.jsonl"), "--out", str(tmp_path / "out")]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (tmp_path / "out" / "keep.txt").read_text() == "precious"


def test_bad_parameter_names_the_value(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "c.jsonl").write_text('{"text": "hello"}\n')
    assert (
        main(["curate", str(tmp_path / "c.jsonl"), "--out", str(tmp_path / "o"), "--eps", "2"]) == 2
    )
    assert "eps=2.0" in capsys.readouterr().err


def test_config_file_is_overridden_by_flags(tmp_path: Path) -> None:
    from batchcraft.cli import build_parser
    from batchcraft.curation import curate_config

    (tmp_path / "curate.toml").write_text('eps = 0.05\nkeep_policy = "hardest"\n')
    args = build_parser().parse_args(
        [
            "curate",
            "x.jsonl",
            "--out",
            "o",
            "--config",
            str(tmp_path / "curate.toml"),
            "--eps",
            "0.2",
        ]
    )
    config = curate_config(args)
    assert (config.eps, config.keep_policy) == (0.2, "hardest")


def test_column_flags_and_their_config_keys(tmp_path: Path) -> None:
    from batchcraft.cli import build_parser
    from batchcraft.curation import curate_config

    (tmp_path / "curate.toml").write_text('drop_columns = ["html"]\nlabel_column = "y"\n')
    flags = ["--drop-columns", "html,raw", "--ref-loss-column", "loss"]
    args = build_parser().parse_args(["curate", "x.jsonl", "--out", "o", *flags])
    config = curate_config(args)
    assert (config.drop_columns, config.ref_loss_column) == (("html", "raw"), "loss")
    from_file = ["curate", "x.jsonl", "--out", "o", "--config", str(tmp_path / "curate.toml")]
    config = curate_config(build_parser().parse_args(from_file))
    assert (config.drop_columns, config.label_column) == (("html",), "y")


def test_minhash_flags_and_their_config_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from batchcraft.cli import build_parser
    from batchcraft.curation import curate_config

    (tmp_path / "curate.toml").write_text('near_dedup = "none"\nminhash_threshold = 0.7\n')
    from_file = ["curate", "x.jsonl", "--out", "o", "--config", str(tmp_path / "curate.toml")]
    config = curate_config(build_parser().parse_args(from_file))
    assert (config.near_dedup, config.minhash_threshold) == ("none", 0.7)
    flags = ["--near-dedup", "minhash", "--minhash-bands", "20", "--minhash-rows", "5"]
    config = curate_config(build_parser().parse_args([*from_file, *flags]))
    assert (config.near_dedup, config.minhash_bands, config.minhash_rows) == ("minhash", 20, 5)
    (tmp_path / "c.jsonl").write_text('{"text": "hello"}\n')
    lone_bands = ["curate", str(tmp_path / "c.jsonl"), "--out", str(tmp_path / "o")]
    assert main([*lone_bands, "--minhash-bands", "20"]) == 2
    assert "give both minhash_bands and minhash_rows" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("record", "flags", "message"),
    [
        (
            {"text": "a", "cluster": 3},
            [],
            "input column 'cluster' of {path} has the name of a column the curated dataset "
            "writes: leave it out with --drop-columns cluster, or rename it in the input",
        ),
        (
            {"text": "a", "label": "x"},
            [],
            "map it with --label-column label, leave it out with --drop-columns label",
        ),
        ({"text": "a"}, ["--drop-columns", "html"], "--drop-columns 'html' not found in any input"),
        (
            {"text": "a", "answer": "b", "loss": 1.0},
            ["--pair-column", "answer", "--ref-loss-column", "loss", "--reference-scores", "pairs"],
            "give either ref_loss_column (reference losses from the input) or "
            "reference_scores='pairs'",
        ),
    ],
)
def test_column_mistakes_fail_fast_in_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    record: dict[str, Any],
    flags: list[str],
    message: str,
) -> None:
    import json

    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps(record) + "\n")
    start = time.perf_counter()
    assert main(["curate", str(path), "--out", str(tmp_path / "out"), *flags]) == 2
    error = capsys.readouterr().err
    assert message.format(path=path) in error and error.count("\n") == 1, error
    assert time.perf_counter() - start < 5, "no SparkSession may be started for a user error"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "command", [["curate", "c.jsonl", "--out", "o"], ["demo", "--rows", "300"]]
)
def test_curate_and_demo_run_the_job_and_the_report_through_batchcraft_curate(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import batchcraft.curation

    configs = []

    def recording_curate(config: Any) -> dict[str, Any]:
        configs.append(config)
        counts = dict.fromkeys(
            ("in", "rejected", "exact_duplicates", "near_duplicates", "semantic_duplicates"), 0
        )
        return {
            "counts": {"total": {**counts, "kept": 0}, "rejected_by_reason": {}},
            "semantic_dedup": {"eps": config.eps},
            "clustering": {"num_clusters": 1},
            "timings": {},
        }

    monkeypatch.setattr(batchcraft.curation, "curate", recording_curate)
    monkeypatch.chdir(tmp_path)
    if command[0] == "demo":
        command = [*command, "--dir", str(tmp_path / "demo")]
    assert main(command) == 0
    assert [config.write_report for config in configs] == [True]
    if command[0] == "demo":  # the demo dataset has a label to train on, and reference losses
        assert (configs[0].label_column, configs[0].reference_scores) == ("topic", "pairs")


@pytest.mark.parametrize("command", ["curate", "synth", "demo"])
def test_every_flag_has_a_help_line_showing_its_default(command: str) -> None:
    import argparse

    from batchcraft.cli import build_parser

    commands = next(
        action
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    )
    parser = commands.choices[command]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = action.option_strings[0] if action.option_strings else action.dest
        assert action.help and action.help != argparse.SUPPRESS, f"{command} {name}: no help"
        if not action.option_strings:
            continue
        assert "default: " in action.help or action.required, f"{command} {name}: no default"
        # A parser default of None (the config file may set it) would show as "None".
        assert not (action.default is None and "%(default)s" in action.help), name
    assert "None" not in parser.format_help()


def test_the_summary_accounts_for_every_row(curated: Any) -> None:
    from batchcraft.cli import summary

    lines = summary(curated.manifest, str(curated.out)).splitlines()
    count = {line[:20].strip(): int(line[20:31].replace(",", "")) for line in lines[1:8]}
    removed = ["rejected", "exact duplicates", "minhash duplicates", "near duplicates"]
    assert sum(count[name] for name in [*removed, "semantic dups", "kept"]) == count["rows in"]
    assert count["minhash duplicates"] == curated.manifest["counts"]["total"]["minhash_duplicates"]
