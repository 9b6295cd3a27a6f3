"""The dedup steps: the key exact duplicates share (`exact`), SemDeDup's duplicate pairs and
chain-safe keep rule (`semantic`); their Spark adapters (`stage`)."""
