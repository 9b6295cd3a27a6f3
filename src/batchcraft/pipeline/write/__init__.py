"""The write step: Parquet files and the atomic commit of a dataset directory (`files`), row
accounting (`accounting`); the Spark adapter that writes shards and rejects (`stage`)."""
