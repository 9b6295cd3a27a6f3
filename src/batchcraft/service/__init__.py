"""batchcraft.service."""
