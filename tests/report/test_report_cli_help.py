"""``batchcraft report --help`` explains every flag and shows its default."""

from __future__ import annotations

import argparse

import pytest

from batchcraft.cli import build_parser
from batchcraft.report import add_report_arguments


def report_parsers() -> dict[str, argparse.ArgumentParser]:
    own = argparse.ArgumentParser(prog="batchcraft report")
    add_report_arguments(own)
    commands = next(
        action
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    )
    return {"add_report_arguments": own, "batchcraft report": commands.choices["report"]}


@pytest.mark.parametrize("entry", ["add_report_arguments", "batchcraft report"])
def test_every_report_flag_has_a_help_line_showing_its_default(entry: str) -> None:
    parser = report_parsers()[entry]
    formatter = parser._get_formatter()
    arguments = [
        action for action in parser._actions if not isinstance(action, argparse._HelpAction)
    ]
    flags = [action for action in arguments if action.option_strings]
    assert {flag.option_strings[0] for flag in flags} >= {
        "--provenance-dir",
        "--batch-size",
        "--strict",
    }
    assert all(action.help for action in arguments)  # the positional DIR is explained too
    missing, wrong = [], []
    for action in flags:
        shown = formatter._expand_help(action) if action.help else ""
        value = action.default
        if "(default: " not in shown:
            missing.append(action.option_strings[0])
        elif isinstance(value, int | float | str) and not isinstance(value, bool):
            wrong += [] if f"(default: {value})" in shown else [action.option_strings[0]]
    assert missing == [], f"flags whose help shows no default: {missing}"
    assert wrong == [], f"flags whose help shows another default than the parser's: {wrong}"
