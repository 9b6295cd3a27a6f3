"""The registry of selectors by name, and `get_selector`."""

from __future__ import annotations

import dataclasses
from typing import Any

from batchcraft.errors import ConfigError, truncated_repr
from batchcraft.selectors.base import BaseSelector
from batchcraft.selectors.concept import ConceptSelector
from batchcraft.selectors.coreset import CoresetSelector
from batchcraft.selectors.hard_negative import HardNegativeSelector
from batchcraft.selectors.jest import JestIndependentSelector, JestSelector
from batchcraft.selectors.uniform import UniformSelector

SELECTORS: dict[str, type[BaseSelector]] = {
    UniformSelector.name: UniformSelector,
    CoresetSelector.name: CoresetSelector,
    ConceptSelector.name: ConceptSelector,
    HardNegativeSelector.name: HardNegativeSelector,
    JestSelector.name: JestSelector,
    JestIndependentSelector.name: JestIndependentSelector,
}
"""Selector classes by name; `get_selector` builds one from keyword parameters."""


def get_selector(name: str, **params: Any) -> BaseSelector:
    """Build the selector registered as ``name`` with ``params``.

    Raises:
        ConfigError: (a ValueError) if ``name`` is unknown, listing the valid
            names, or a parameter is unknown or out of range.

    Example:
        >>> get_selector("uniform").name
        'uniform'
    """
    try:
        selector_class = SELECTORS[name]
    except (KeyError, TypeError):
        raise ConfigError(
            f"unknown selector {truncated_repr(name)}; valid: {sorted(SELECTORS)}"
        ) from None
    valid = sorted(field.name for field in dataclasses.fields(selector_class))  # type: ignore[arg-type]
    unknown = sorted(set(params) - set(valid))
    if unknown:
        shown = ", ".join(truncated_repr(key) for key in unknown[:5])
        raise ConfigError(f"unknown parameters [{shown}] for selector {name!r}; valid: {valid}")
    try:
        return selector_class(**params)
    except TypeError as exc:  # a value of the wrong type, e.g. "abc" for a number
        raise ConfigError(
            f"bad parameters {truncated_repr(params)} for selector {name!r}: {exc}"
        ) from None
