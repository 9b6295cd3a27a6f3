"""batchcraft: curate training corpora offline, serve selected mini-batches online."""

__version__ = "0.1.0"
