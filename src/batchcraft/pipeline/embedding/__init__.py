"""The embed step: the sentence-transformers text encoder (`sentence_encoder`), unit-norm
scaling (`vectors`); the Spark adapter (`stage`)."""
