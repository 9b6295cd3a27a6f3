"""The examples in the selectors' docstrings run and give what they show."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import batchcraft.selectors

MODULES = sorted(info.name for info in pkgutil.iter_modules(batchcraft.selectors.__path__))


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples(module_name: str) -> None:
    module = importlib.import_module(f"batchcraft.selectors.{module_name}")
    result = doctest.testmod(
        module, extraglobs={"np": __import__("numpy")}, optionflags=doctest.ELLIPSIS
    )
    assert result.failed == 0


@pytest.mark.parametrize("name", sorted(batchcraft.selectors.SELECTORS))
def test_every_selector_documents_paper_columns_and_example(name: str) -> None:
    doc = batchcraft.selectors.SELECTORS[name].__doc__ or ""
    assert "Example:" in doc
    assert "Columns" in doc or "columns" in doc or "Same inputs" in doc
