"""Deterministic synthetic data for demos, tests and benchmarks.

``generate_corpus`` writes a small multi-source text corpus with known topics, a
long-tailed concept distribution, paired answers and injected problems (duplicates of
three kinds, mismatched pairs, rows a reader must reject), plus the ground truth of
every injection. ``synthetic_embeddings`` produces clustered unit vectors with planted
near-duplicate pairs for benchmarks too large for a real embedding model.
"""

from batchcraft.synth.corpus import DEFAULT_SOURCES, CorpusOptions, generate_corpus
from batchcraft.synth.embeddings import (
    SynthEmbeddings,
    synthetic_embeddings,
    write_embeddings_parquet,
)
from batchcraft.synth.ground_truth import SynthCorpus, load_corpus
from batchcraft.synth.text import normalize_text

__all__ = [
    "DEFAULT_SOURCES",
    "CorpusOptions",
    "SynthCorpus",
    "SynthEmbeddings",
    "generate_corpus",
    "load_corpus",
    "normalize_text",
    "synthetic_embeddings",
    "write_embeddings_parquet",
]
