"""The reference-scores step: each pair's SigLIP sigmoid loss against negatives from the
data, JEST's reference loss computed from the curation embeddings (`pairwise`); the Spark
adapter (`stage`)."""
