"""Deterministic synthetic data for demos, tests and benchmarks.

``generate_corpus`` writes a small multi-source text corpus with known topics, a
long-tailed concept distribution, paired answers and injected problems (duplicates of
three kinds, mismatched pairs, rows a reader must reject), plus the ground truth of
every injection. ``synthetic_embeddings`` produces clustered unit vectors with planted
near-duplicate pairs for benchmarks too large for a real embedding model.
``write_curated_dataset`` writes a small curated dataset directory (the contract of
`batchcraft.dataset`) for tests and benchmarks of the service without the pipeline.
"""

from batchcraft.synth.corpus import DEFAULT_SOURCES, CorpusOptions, generate_corpus
from batchcraft.synth.curated import write_curated_dataset
from batchcraft.synth.embeddings import (
    SynthEmbeddings,
    synthetic_embeddings,
    write_embeddings_parquet,
)
from batchcraft.synth.ground_truth import SynthCorpus, load_corpus

__all__ = [
    "DEFAULT_SOURCES",
    "CorpusOptions",
    "SynthCorpus",
    "SynthEmbeddings",
    "generate_corpus",
    "load_corpus",
    "synthetic_embeddings",
    "write_curated_dataset",
    "write_embeddings_parquet",
]
