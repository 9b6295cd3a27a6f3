"""The concepts step: the concept vocabulary and zero-shot annotation (`zero_shot`); the
Spark adapter (`stage`)."""
