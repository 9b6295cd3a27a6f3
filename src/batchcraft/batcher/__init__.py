"""batchcraft.batcher."""
