"""``batchcraft plan``: epoch plans of selectors that ignore feedback, computed on Spark.

See `batchcraft.batcher.plans` for the plan format and how `batchcraft serve` uses it.
"""
