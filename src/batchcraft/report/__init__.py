"""batchcraft.report."""
