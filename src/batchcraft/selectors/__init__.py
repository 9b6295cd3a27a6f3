"""batchcraft.selectors."""
