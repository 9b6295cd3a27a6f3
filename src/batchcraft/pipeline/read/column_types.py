"""The Arrow types of the input's own columns: found per JSONL chunk, unified across files,
and the type Spark carries each one as. Pure: pyarrow only, no Spark.

A user column keeps its Arrow type in the dataset. On its way through the Spark stages it
travels in a *carrier* type that Spark holds without loss (a timestamp as its integer
count, a ``uint64`` as ``decimal(20, 0)``, a dictionary as its values), and the write step
casts it back (`batchcraft.dataset.schema.to_contract`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

KEPT_COLUMNS = "kept_columns"
"""The struct column that carries the input columns the dataset keeps (user columns and
the label) through the Spark stages, each field in its carrier type."""


class UnsupportedType(ValueError):
    """A column of an Arrow type Spark cannot carry (unions, intervals, extension types)."""


@dataclass(frozen=True)
class KeptColumn:
    """An input column the dataset keeps.

    Attributes:
        name: Its name in the dataset (``label`` for the ``label_column``).
        column: Its name in the input.
        type: Its Arrow type in the dataset: the input's types, promoted to one.
    """

    name: str
    column: str
    type: pa.DataType


def unify_types(types: Iterable[pa.DataType]) -> pa.DataType:
    """The one type that holds values of all ``types``, as Arrow promotes them
    (``int64 + double -> double``, ``null + T -> T``, struct fields merged).

    Raises:
        pa.ArrowTypeError: the types do not promote to a common one (``int64 + string``).
    """
    schemas = [pa.schema([pa.field("column", kind)]) for kind in types]
    return pa.unify_schemas(schemas, promote_options="permissive").field("column").type


def json_value_types(values: list[Any]) -> Iterator[tuple[pa.DataType | None, str | None]]:
    """The Arrow type of a column's JSON values (Python objects), as ``(type, None)``;
    for values of types that do not promote to one, each incompatible type; or
    ``(None, problem)`` for values Arrow cannot type (an integer beyond int64)."""
    try:
        yield pa.array(values).type, None
        return
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        pass
    merged: list[pa.DataType] = []
    for value in values:
        try:
            kind = pa.array([value]).type
        except OverflowError:
            yield None, f"holds an integer beyond the int64 range ({value})"
            return
        except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
            yield None, f"holds a value Arrow cannot type ({error})"
            return
        for index, known in enumerate(merged):
            try:
                merged[index] = unify_types([known, kind])
                break
            except pa.ArrowTypeError:
                continue
        else:
            merged.append(kind)
    for kind in merged:
        yield kind, None


def carrier_type(kind: pa.DataType) -> pa.DataType:
    """The Arrow type that carries a column of type ``kind`` through Spark without loss.

    Raises:
        UnsupportedType: Spark has no type that holds ``kind``'s values.
    """
    if kind in _SAME or pa.types.is_decimal128(kind):
        return kind
    if kind in _CARRIED_AS:
        return _CARRIED_AS[kind]
    if pa.types.is_dictionary(kind):
        return carrier_type(kind.value_type)
    if pa.types.is_date32(kind) or pa.types.is_time32(kind):
        return pa.int32()
    if any(test(kind) for test in _INT64_COUNTS):
        return pa.int64()
    if pa.types.is_fixed_size_binary(kind):
        return pa.binary()
    if pa.types.is_decimal256(kind) and kind.precision <= 38:
        return pa.decimal128(kind.precision, kind.scale)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        return pa.list_(carrier_type(kind.value_type))
    if pa.types.is_map(kind):
        return pa.map_(carrier_type(kind.key_type), carrier_type(kind.item_type))
    if pa.types.is_struct(kind):
        return pa.struct([field.with_type(carrier_type(field.type)) for field in kind])
    raise UnsupportedType(f"Spark cannot carry Arrow type {kind}")


_SAME = frozenset(
    {
        pa.null(),
        pa.bool_(),
        pa.int8(),
        pa.int16(),
        pa.int32(),
        pa.int64(),
        pa.float32(),
        pa.float64(),
        pa.string(),
        pa.binary(),
    }
)
_CARRIED_AS = {
    pa.uint8(): pa.int16(),
    pa.uint16(): pa.int32(),
    pa.uint32(): pa.int64(),
    pa.uint64(): pa.decimal128(20, 0),
    pa.float16(): pa.float32(),
    pa.large_string(): pa.string(),
    pa.large_binary(): pa.binary(),
}
_INT64_COUNTS = (
    pa.types.is_date64,
    pa.types.is_timestamp,
    pa.types.is_time64,
    pa.types.is_duration,
)


def to_carrier(values: pa.Array, kind: pa.DataType) -> pa.Array:
    """``values`` (of a type ``kind`` unifies) as ``kind``, then in its carrier type."""
    if pa.types.is_null(values.type) and not pa.types.is_null(kind):
        return pa.nulls(len(values), carrier_type(kind))
    return values.cast(kind).cast(carrier_type(kind))


def kept_struct(kept: Iterable[KeptColumn]) -> pa.StructType:
    """The struct that carries the kept columns through Spark, each in its carrier type."""
    return pa.struct([pa.field(column.name, carrier_type(column.type)) for column in kept])


def unnest_kept_columns(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` with the fields of its KEPT_COLUMNS struct as columns of their own (still
    in their carrier types), if it has the struct."""
    if KEPT_COLUMNS not in batch.schema.names:
        return batch
    index = batch.schema.get_field_index(KEPT_COLUMNS)
    kept = batch.column(index)
    unnested = batch.remove_column(index)
    for field, values in zip(kept.type, kept.flatten(), strict=True):  # with the struct's nulls
        unnested = unnested.append_column(field.name, values)
    return unnested
