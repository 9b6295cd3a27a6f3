"""The MinHash near-dedup step: word n-gram shingles (`shingles`), MinHash signatures and
LSH bands (`signatures`), candidate pairs and their verified Jaccard (`candidates`),
connected components in Spark (`components`), the chain-safe keep rule per duplicate group
(`keep`); the Spark adapter (`stage`)."""
