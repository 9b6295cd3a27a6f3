"""``batchcraft serve --help`` explains every flag and shows its default."""

from __future__ import annotations

import argparse

import pytest

from batchcraft.cli import build_parser
from batchcraft.service.cli import add_serve_arguments


def serve_parsers() -> dict[str, argparse.ArgumentParser]:
    own = argparse.ArgumentParser(prog="batchcraft serve")
    add_serve_arguments(own)
    commands = next(
        action
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    )
    return {"python -m batchcraft.service.cli": own, "batchcraft serve": commands.choices["serve"]}


@pytest.mark.parametrize("entry", ["python -m batchcraft.service.cli", "batchcraft serve"])
def test_every_serve_flag_has_a_help_line_showing_its_default(entry: str) -> None:
    parser = serve_parsers()[entry]
    formatter = parser._get_formatter()
    flags = [
        action
        for action in parser._actions
        if action.option_strings and not isinstance(action, argparse._HelpAction)
    ]
    assert len(flags) >= 20  # the serve flags are all there
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
