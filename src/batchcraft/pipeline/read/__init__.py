"""The read+validate step: input discovery and read planning (`inputs`), per-format readers
(`readers`), per-record validation (`validate`, `normalize`, `vector_checks`), one chunk
into Arrow rows (`parse`); the Spark adapter and the corpus-wide checks (`stage`)."""
