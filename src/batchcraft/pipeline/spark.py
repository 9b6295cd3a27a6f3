"""The SparkSession of a curation job: workers run this interpreter, the hub stays offline."""

from __future__ import annotations

import os
import sys

from batchcraft._deps import require


def spark_session(
    master: str = "local[*]", conf: dict[str, str] | None = None, interactive: bool = False
):  # type: ignore[no-untyped-def]
    """Create (or reuse) a SparkSession whose Python workers use ``sys.executable``.

    Spark would otherwise start ``python3`` from PATH on the executors, which may lack
    batchcraft and its dependencies.
    """
    require("pyspark")
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    builder = (
        SparkSession.builder.master(master)
        .appName("batchcraft-curate")
        .config("spark.pyspark.python", sys.executable)
        .config("spark.pyspark.driver.python", sys.executable)
        .config("spark.executorEnv.PYSPARK_PYTHON", sys.executable)
        .config("spark.executorEnv.HF_HUB_OFFLINE", "1")
        .config("spark.executorEnv.TRANSFORMERS_OFFLINE", "1")
        .config("spark.executorEnv.TOKENIZERS_PARALLELISM", "false")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "true" if interactive else "false")
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "2048")
        .config("spark.python.worker.reuse", "true")
        .config("spark.driver.memory", os.environ.get("BATCHCRAFT_DRIVER_MEMORY", "4g"))
    )
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
