"""Spark schemas the stage adapters share: the vector column type, and a frame's schema
grown by the columns a ``mapInArrow`` stage appends."""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import DataFrame
from pyspark.sql import types as T

VECTOR = T.ArrayType(T.FloatType())


def extend_schema(df: DataFrame, added: Mapping[str, T.DataType]) -> T.StructType:
    """The DataFrame's schema plus new columns (without mutating the cached ``df.schema``)."""
    return T.StructType([*df.schema.fields, *(T.StructField(n, t) for n, t in added.items())])
