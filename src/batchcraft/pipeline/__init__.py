"""batchcraft.pipeline."""
