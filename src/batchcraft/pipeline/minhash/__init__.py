"""The MinHash near-dedup step: word n-gram shingles (`shingles`), MinHash signatures and
LSH bands (`signatures`), candidate pairs and their verified Jaccard (`candidates`), the
chain-safe keep rule per duplicate group (`keep`), all pure numpy/pyarrow; the Spark
adapter (`stage`), whose duplicate groups are connected components computed in Spark
(`batchcraft.pipeline.graph`)."""
