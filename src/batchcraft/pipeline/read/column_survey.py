"""The types of the JSONL inputs' columns, read from every record: pure, no Spark.

A JSONL file states no types, and a key's values may change type anywhere in the file;
the job reads every record of each chunk (`survey_json_chunk`, run by the read stage on
the executors) before it plans the columns it keeps (`column_plan.plan_columns`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from batchcraft.errors import InputError
from batchcraft.pipeline.config import CurateConfig
from batchcraft.pipeline.read.column_plan import Observation, read_columns
from batchcraft.pipeline.read.column_types import json_value_types
from batchcraft.pipeline.read.inputs import Chunk, InputFile
from batchcraft.pipeline.read.readers import read_records


@dataclass(frozen=True)
class SurveyedType:
    """One type a JSONL chunk holds under a key, or what makes its values unusable.

    Attributes:
        name: The key (column) name.
        position: Where the key was first seen in the chunk (keys keep their input order).
        type: The Arrow type of its values; None when ``problem`` is set.
        problem: Why the values have no Arrow type, e.g. an integer beyond int64.
    """

    name: str
    position: int
    type: pa.DataType | None
    problem: str | None = None


def survey_json_chunk(chunk: Chunk, skipped: frozenset[str]) -> list[SurveyedType]:
    """The types of every key of a JSONL chunk's records, but the ``skipped`` keys.

    A key whose values promote to one type gives one entry; values that do not (``1``
    and ``"a"``) give an entry per incompatible type, for the caller to name them.
    """
    values: dict[str, list[Any]] = {}
    for _record, payload, _raw in read_records(chunk):
        if not isinstance(payload, dict):  # a record rejected while decoding
            continue
        for key, value in payload.items():
            if key not in skipped:
                values.setdefault(key, []).append(value)
    found = []
    for position, (name, column) in enumerate(values.items()):
        for kind, problem in json_value_types(column):
            found.append(SurveyedType(name, position, kind, problem))
    return found


def survey_skipped(config: CurateConfig) -> frozenset[str]:
    """The JSONL keys whose types the job needs not know: those it reads (but the
    label, which keeps its type) and the dropped ones."""
    read = set(read_columns(config).values()) - {config.label_column}
    return frozenset(read | set(config.drop_columns))


def with_surveyed_types(
    observed: Sequence[Observation],
    files: Sequence[InputFile],
    surveyed: Iterable[tuple[int, SurveyedType]],
) -> list[Observation]:
    """``observed`` with each JSONL file's columns replaced by the types its records hold
    (``surveyed``: the file index of each `SurveyedType`, in input order).

    Raises:
        InputError: a column's values have no Arrow type (an integer beyond int64).
    """
    typed = [seen for seen in observed if seen.file.format != "jsonl"]
    for file_index, found in surveyed:
        file = files[file_index]
        if found.problem is not None:
            raise InputError(
                f"column {found.name!r} of {file.path} {found.problem}; leave it out with "
                f"--drop-columns {found.name}, or store it as text"
            )
        typed.append(Observation(file, found.name, found.type))
    order = {file.path: index for index, file in enumerate(files)}
    return sorted(typed, key=lambda seen: order[seen.file.path])  # stable: keeps key order
