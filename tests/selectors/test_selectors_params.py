"""Selector parameters are held to their annotated types (issue 17, defect 6: from JSON,
``pool_multiplier: true`` and a one-element ``adam_betas`` were accepted)."""

from __future__ import annotations

import math

import pytest

from batchcraft.errors import ConfigError
from batchcraft.selectors import get_selector
from batchcraft.selectors.base import check_range
from batchcraft.selectors.coreset import CoresetSelector
from batchcraft.selectors.hard_negative import HardNegativeSelector


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("coreset", {"pool_multiplier": True}, "pool_multiplier=True must be a number"),
        ("coreset", {"adam_betas": [0.9]}, "adam_betas=.* must hold exactly 2 values"),
        ("coreset", {"adam_betas": [0.9, 0.99, 0.999]}, "exactly 2 values"),
        ("coreset", {"adam_betas": 0.9}, "adam_betas=0.9 must be a list"),
        ("coreset", {"adam_betas": [0.9, "x"]}, r"adam_betas\[1\]='x' must be a number"),
        ("coreset", {"sketch_dimensions": 2.5}, "sketch_dimensions=2.5 must be an integer"),
        ("coreset", {"greedy_epsilon": False}, "greedy_epsilon=False must be a number"),
        ("coreset", {"features": 3}, "features=3 must be one of"),
        ("hard_negative", {"cluster_size": True}, "cluster_size=True must be an integer"),
        ("hard_negative", {"cluster_size": 2**40}, "cluster_size=.* must be within"),
        ("hard_negative", {"num_mined_negatives": 10**6}, r"num_mined_negatives=1000000"),
        ("concept", {"target_distribution": ["a"]}, "must be a mapping"),
        ("concept", {"target_distribution": {"a": True}}, "must be a number"),
        ("concept", {"target_distribution": {"a": "1"}}, "must be a number"),
        ("jest", {"num_chunks": 4.0}, "num_chunks=4.0 must be an integer"),
        ("jest", {"temperature": 10**400}, "temperature=.* beyond the float range"),
        ("jest_independent", {"method": ["top_k"]}, "must be one of"),
    ],
)
def test_parameters_of_the_wrong_type_are_refused(name: str, params: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        get_selector(name, **params)


def test_json_values_become_the_annotated_types() -> None:
    selector = get_selector("coreset", pool_multiplier=4, adam_betas=[0.5, 0.25])
    assert isinstance(selector, CoresetSelector)
    assert selector.pool_multiplier == 4.0 and isinstance(selector.pool_multiplier, float)
    assert selector.adam_betas == (0.5, 0.25)  # a tuple, as annotated: hashable, comparable
    concept = get_selector("concept", target_distribution={"a": 1, "b": 0.5})
    assert concept.target_distribution == {"a": 1.0, "b": 0.5}  # type: ignore[attr-defined]


def test_python_callers_get_a_type_error() -> None:
    with pytest.raises(TypeError, match="adam_betas"):
        CoresetSelector(adam_betas=(0.9,))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="cluster_size"):
        HardNegativeSelector(cluster_size=1.5)  # type: ignore[arg-type]


def test_check_range_takes_numbers_of_any_size() -> None:
    with pytest.raises(ConfigError, match=r"x=10000000000.*… must be in \[0, 1\]"):
        check_range("x", 10**4000, 0, 1)
    with pytest.raises(ConfigError, match="must be in"):
        check_range("x", math.nan, 0, 1)
    with pytest.raises(TypeError, match="x='a' must be a number"):
        check_range("x", "a", 0, 1)  # type: ignore[arg-type]
