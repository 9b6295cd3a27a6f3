"""Selector parameters checked against their annotated types.

Parameters arrive as JSON from a trainer (``selector_params``), where ``true``
passes for the number 1 and a one-element list for a pair. `check_parameter_types`
holds every field of a selector to its annotation before the selector checks
ranges: a bool is not a number, an integer parameter takes no fraction, a
``tuple[float, float]`` is exactly two numbers, a ``Literal`` one of its values,
a ``Mapping[str, float]`` string keys and numbers. JSON's lists become tuples and
integers given for a float become floats, so that what the selector holds is
what its annotation says.
"""

from __future__ import annotations

import dataclasses
import numbers
import types
import typing
from collections.abc import Mapping
from typing import Any

from batchcraft.errors import truncated_repr

MAX_INTEGER = 2**31 - 1
"""Largest magnitude of an integer parameter (sizes and counts, never more)."""


def check_parameter_types(selector: Any) -> None:
    """Hold each dataclass field of ``selector`` to its annotation (see module docstring),
    replacing JSON's lists by tuples and integers by floats where the annotation asks.

    Raises:
        TypeError: naming the field, its value and the type it must have.
    """
    hints = typing.get_type_hints(type(selector))
    for field in dataclasses.fields(selector):
        value = getattr(selector, field.name)
        checked = _checked(field.name, value, hints[field.name])
        if checked is not value:
            object.__setattr__(selector, field.name, checked)


def _checked(name: str, value: Any, kind: Any) -> Any:
    """``value`` as an instance of ``kind`` (raises TypeError if it is not one)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is typing.Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        options = [option for option in args if option is not type(None)]
        if len(options) == 1:
            return _checked(name, value, options[0])
    elif origin is typing.Literal:
        if isinstance(value, str) and value in args:
            return value
        raise TypeError(f"{name}={truncated_repr(value)} must be one of {list(args)}")
    elif kind is float:
        return _number(name, value)
    elif kind is int:
        return _integer(name, value)
    elif origin is tuple:
        return _tuple(name, value, args)
    elif origin in (dict, Mapping):
        return _mapping(name, value, args)
    return value  # a type this check does not know: the selector's own checks apply


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}={truncated_repr(value)} must be a number")
    try:
        return float(value)
    except OverflowError:
        raise TypeError(f"{name}={truncated_repr(value)} is beyond the float range") from None


def _integer(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}={truncated_repr(value)} must be an integer")
    if abs(int(value)) > MAX_INTEGER:
        raise TypeError(f"{name}={truncated_repr(value)} must be within ±{MAX_INTEGER}")
    return int(value)


def _tuple(name: str, value: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
    if not isinstance(value, tuple | list):
        raise TypeError(f"{name}={truncated_repr(value)} must be a list")
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_checked(f"{name}[{i}]", item, args[0]) for i, item in enumerate(value))
    if len(value) != len(args):
        raise TypeError(f"{name}={truncated_repr(value)} must hold exactly {len(args)} values")
    return tuple(
        _checked(f"{name}[{i}]", item, kind)
        for i, (item, kind) in enumerate(zip(value, args, strict=True))
    )


def _mapping(name: str, value: Any, args: tuple[Any, ...]) -> dict[Any, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"{name}={truncated_repr(value)} must be a mapping")
    key_kind, value_kind = args or (Any, Any)
    checked = {}
    for key, item in value.items():
        if key_kind is str and not isinstance(key, str):
            raise TypeError(f"{name} key {truncated_repr(key)} must be a string")
        checked[key] = _checked(f"{name}[{truncated_repr(key)}]", item, value_kind)
    return checked
