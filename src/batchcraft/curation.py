"""Curation as the ``batchcraft curate`` command runs it: the curated dataset, then its report.

The pipeline's job (`batchcraft.pipeline.curate`) writes the dataset only and imports no
report; this module asks for the report afterwards, when ``write_report`` is true.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from batchcraft.pipeline.config import CurateConfig

if TYPE_CHECKING:  # pyspark is imported by the job, when it runs
    from pyspark.sql import SparkSession


def curate(
    inputs: str | Sequence[str] | CurateConfig,
    out: str | None = None,
    *,
    spark: SparkSession | None = None,
    **params: Any,
) -> dict[str, Any]:
    """Curate a corpus into a dataset and write its report; return the manifest.

    Takes the arguments of `batchcraft.pipeline.curate`, which it runs first; then, when
    the config's ``write_report`` is true (the default), writes ``report.html`` and
    ``report.json`` into the dataset with `batchcraft.report.write_report`.

    Example:
        >>> import batchcraft
        >>> batchcraft.curate("corpus/*.jsonl", "curated/", id_column="id")  # doctest: +SKIP
    """
    from batchcraft.pipeline import curate as run_job

    config = CurateConfig.from_call(inputs, out, params)
    manifest = run_job(config, spark=spark)
    if config.write_report:
        from batchcraft.report import write_report

        write_report(config.out)
    return manifest
