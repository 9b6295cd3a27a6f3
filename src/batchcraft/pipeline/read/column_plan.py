"""Which input columns the dataset keeps, under which names and Arrow types: pure, no Spark.

Every input column the job does not read as text, id, pair, concepts, embedding, label or
reference loss is a *user column*: kept under its own name and type, unless
``drop_columns`` names it. A user column named like a contract column, a dropped or
mapped column no input has, and types that do not promote to one across the inputs stop
the job with a one-line `InputError` that says what to do.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pyarrow as pa

from batchcraft.dataset.schema import (
    CONCEPTS,
    CONTRACT_COLUMNS,
    EMBEDDING,
    ID,
    LABEL,
    PAIR_TEXT,
    REF_LOSS,
    TEXT,
)
from batchcraft.errors import InputError
from batchcraft.pipeline.config import CurateConfig
from batchcraft.pipeline.read.column_types import (
    KeptColumn,
    UnsupportedType,
    carrier_type,
    unify_types,
)
from batchcraft.pipeline.read.inputs import InputFile, input_columns

_FILES_NAMED = 3  # files a message names per type before "and N more"


@dataclass(frozen=True)
class Observation:
    """One input file's column: its name and type (None while a JSONL file is unread)."""

    file: InputFile
    name: str
    type: pa.DataType | None


@dataclass(frozen=True)
class ColumnPlan:
    """The input columns the dataset keeps beside those the job reads.

    Attributes:
        user_columns: Kept under their own names and types, in input order.
        label: The ``label_column``, kept as ``label``; None without one.
        dropped: The columns ``drop_columns`` left out.
    """

    user_columns: tuple[KeptColumn, ...] = ()
    label: KeptColumn | None = None
    dropped: tuple[str, ...] = ()

    @property
    def carried(self) -> tuple[KeptColumn, ...]:
        """Every kept column the stages carry to the write: the label, then the others."""
        return ((self.label,) if self.label else ()) + self.user_columns


def observe_inputs(files: Sequence[InputFile]) -> list[Observation]:
    """Every column of every input, typed where the file states its types (not JSONL)."""
    observed = []
    for file in files:
        for name, kind in (input_columns(file) or {}).items():
            observed.append(Observation(file, name, kind))
    return observed


def needs_survey(observed: Sequence[Observation]) -> bool:
    """Whether some column's type is known only by reading its JSONL records."""
    return any(seen.type is None for seen in observed)


def required_columns(config: CurateConfig) -> dict[str, str]:
    """The flag -> input column of every column each input must have (`inputs.check_columns`)."""
    flags = {
        "--text-column": config.text_column,
        "--id-column": config.id_column,
        "--pair-column": config.pair_column,
        "--concept-column": config.concept_column,
        "--embedding-column": config.embedding_column,
    }
    return {flag: column for flag, column in flags.items() if column}


def read_columns(config: CurateConfig) -> dict[str, str]:
    """The flag -> input column of every column the job reads (no user column): the
    required ones, and the label and reference loss, which a record may lack."""
    optional = {"--label-column": config.label_column, "--ref-loss-column": config.ref_loss_column}
    return {**required_columns(config), **{f: c for f, c in optional.items() if c}}


def check_column_names(observed: Sequence[Observation], config: CurateConfig) -> None:
    """The checks of column names, made before Spark starts (the keys of a JSONL file
    are those of its first records, as for `inputs.check_columns`).

    Raises:
        InputError: a ``label_column``, ``ref_loss_column`` or dropped column no input
            has, or a user column named like a contract column.
    """
    available = sorted({seen.name for seen in observed})
    wanted = [  # columns a record may lack: needed in some input, not in every one
        ("--label-column", config.label_column),
        ("--ref-loss-column", config.ref_loss_column),
        *(("--drop-columns", column) for column in config.drop_columns),
    ]
    for flag, column in wanted:
        if column and column not in available:
            raise InputError(
                f"{flag} {column!r} not found in any input; their columns are {available}"
            )
    _check_clashes(observed, config)


def plan_columns(observed: Sequence[Observation], config: CurateConfig) -> ColumnPlan:
    """The columns the dataset keeps, each with the one type its inputs promote to.

    Args:
        observed: Every input's columns, typed (JSONL ones by `column_survey`).
        config: The job's configuration.

    Raises:
        InputError: a user column named like a contract column (checked again: a JSONL
            key may first appear after the records `check_column_names` saw), a column
            whose types do not promote to one or that Spark cannot carry, or a
            ``label_column`` holding nested values.
    """
    _check_clashes(observed, config)
    kept = [
        KeptColumn(name, name, _unified(name, observed))
        for name in _user_column_names(observed, config)
    ]
    label = None
    if config.label_column:
        label = KeptColumn(LABEL, config.label_column, _unified(config.label_column, observed))
        _check_label_type(config.label_column, label.type)
    return ColumnPlan(tuple(kept), label, tuple(config.drop_columns))


def _check_clashes(observed: Iterable[Observation], config: CurateConfig) -> None:
    for name, file in _user_column_names(observed, config).items():
        if name in CONTRACT_COLUMNS:
            raise InputError(_clash_message(name, file))


def _user_column_names(
    observed: Iterable[Observation], config: CurateConfig
) -> dict[str, InputFile]:
    """Each user column's name and the first input that has it, in input order."""
    skipped = set(read_columns(config).values()) | set(config.drop_columns)
    names: dict[str, InputFile] = {}
    for seen in observed:
        if seen.name not in skipped:
            names.setdefault(seen.name, seen.file)
    return names


_MAPPING_FLAGS = {  # contract columns an input column can be mapped to, and the flag
    ID: "--id-column",
    TEXT: "--text-column",
    PAIR_TEXT: "--pair-column",
    CONCEPTS: "--concept-column",
    EMBEDDING: "--embedding-column",
    LABEL: "--label-column",
    REF_LOSS: "--ref-loss-column",
}


def _clash_message(name: str, file: InputFile) -> str:
    """What to do about an input column named like the contract's column ``name``."""
    fix = f"leave it out with --drop-columns {name}"
    if name in _MAPPING_FLAGS:
        fix = f"map it with {_MAPPING_FLAGS[name]} {name}, {fix}"
    return (
        f"input column {name!r} of {file.path} has the name of a column the curated dataset "
        f"writes: {fix}, or rename it in the input"
    )


def _unified(name: str, observed: Sequence[Observation]) -> pa.DataType:
    """The one type of column ``name`` across the inputs that hold it."""
    seen = [(item.file, item.type) for item in observed if item.name == name]
    known = [kind for _, kind in seen if kind is not None]
    try:
        unified = unify_types(known) if known else pa.null()
    except pa.ArrowTypeError:
        raise InputError(
            f"column {name!r} has types that do not promote to one: {_where_types(seen)}; "
            f"make them agree, or leave the column out with --drop-columns {name}"
        ) from None
    try:
        carrier_type(unified)
    except UnsupportedType:
        raise InputError(
            f"column {name!r} is {unified}, a type the Spark job cannot carry; leave it out "
            f"with --drop-columns {name}, or store it in another type"
        ) from None
    return unified


def _where_types(seen: Sequence[tuple[InputFile, pa.DataType | None]]) -> str:
    """``int64 in a.jsonl, string in b.csv and c.csv``: which files hold which type."""
    files_of: dict[str, list[str]] = {}
    for file, kind in seen:
        if kind is not None:
            files_of.setdefault(str(kind), []).append(file.path)
    parts = []
    for kind, paths in files_of.items():
        named = ", ".join(dict.fromkeys(paths[:_FILES_NAMED]))
        more = len(set(paths)) - len(set(paths[:_FILES_NAMED]))
        parts.append(f"{kind} in {named}" + (f" (and {more} more files)" if more > 0 else ""))
    return "; ".join(parts)


def _check_label_type(column: str, kind: pa.DataType) -> None:
    scalar = (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_null(kind)
    )
    if not scalar:
        raise InputError(
            f"--label-column {column!r} holds {kind}: a label must be a number, a boolean "
            "or a string"
        )
