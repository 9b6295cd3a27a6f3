"""Spark schemas the stage adapters share: the vector column type, a frame's schema grown
by the columns a ``mapInArrow`` stage appends, and the Spark type of each Arrow type that
carries a kept input column (`read.column_types.carrier_type`)."""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import types as T

VECTOR = T.ArrayType(T.FloatType())


def extend_schema(df: DataFrame, added: Mapping[str, T.DataType]) -> T.StructType:
    """The DataFrame's schema plus new columns (without mutating the cached ``df.schema``)."""
    return T.StructType([*df.schema.fields, *(T.StructField(n, t) for n, t in added.items())])


_SPARK_TYPES = {  # Arrow carrier type -> Spark type (`read.column_types.carrier_type`)
    pa.null(): T.NullType(),
    pa.bool_(): T.BooleanType(),
    pa.int8(): T.ByteType(),
    pa.int16(): T.ShortType(),
    pa.int32(): T.IntegerType(),
    pa.int64(): T.LongType(),
    pa.float32(): T.FloatType(),
    pa.float64(): T.DoubleType(),
    pa.string(): T.StringType(),
    pa.binary(): T.BinaryType(),
}


def spark_type(carrier: pa.DataType) -> T.DataType:
    """The Spark type of an Arrow carrier type (`read.column_types.carrier_type`'s result)."""
    if carrier in _SPARK_TYPES:
        return _SPARK_TYPES[carrier]
    if pa.types.is_decimal128(carrier):
        return T.DecimalType(carrier.precision, carrier.scale)
    if pa.types.is_list(carrier):
        return T.ArrayType(spark_type(carrier.value_type))
    if pa.types.is_map(carrier):
        return T.MapType(spark_type(carrier.key_type), spark_type(carrier.item_type))
    if pa.types.is_struct(carrier):
        return T.StructType([T.StructField(f.name, spark_type(f.type)) for f in carrier])
    raise TypeError(f"{carrier} is no carrier type")  # carrier_type returns none of these
