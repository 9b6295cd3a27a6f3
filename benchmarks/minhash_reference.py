"""datatrove's MinHash pipeline, the reference of `minhash_dedup.py`: its four steps with its
local executor, on the same JSONL files and cores.

Its English word tokenizer needs NLTK's punkt data, a download outside PyPI; the steps are
given `SplitTokenizer` instead, which splits words where batchcraft does (at every run of
characters that are neither letters nor digits), after datatrove's own `simplify_text`. On
the benchmark's letters-only words both read the same words, so both see the same shingles.
Kept in a module of its own so that datatrove's worker processes can import the tokenizer.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from datatrove.utils.word_tokenizers import WordTokenizer

_WORD_SEPARATORS = re.compile(r"[\W_]+")


class SplitTokenizer(WordTokenizer):
    """Words split at runs of characters that are neither letters nor digits."""

    def word_tokenize(self, text: str) -> list[str]:
        return [word for word in _WORD_SEPARATORS.split(text) if word]

    def sent_tokenize(self, text: str) -> list[str]:
        return [text]

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return [(0, len(text))]


def datatrove_removed(
    corpus: Path, work: Path, bands: int, rows: int, cores: int
) -> tuple[set[str], float]:
    """The ids datatrove's MinHash pipeline removes, and the seconds it took (from reading
    the JSONL to writing the kept and the removed documents)."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    config = MinhashConfig(n_grams=5, num_buckets=bands, hashes_per_bucket=rows)

    def reader() -> JsonlReader:
        return JsonlReader(str(corpus), glob_pattern="*.jsonl", id_key="id", text_key="text")

    def stage(pipeline: list, tasks: int, name: str, after: object = None) -> object:
        return LocalPipelineExecutor(
            pipeline,
            tasks=tasks,
            workers=cores,
            logging_dir=str(work / f"logs-{name}"),
            depends=after,
        )

    signatures = stage(
        [
            reader(),
            MinhashDedupSignature(
                str(work / "signatures"), config=config, language=SplitTokenizer()
            ),
        ],
        cores,
        "signatures",
    )
    buckets = stage(
        [MinhashDedupBuckets(str(work / "signatures"), str(work / "buckets"), config=config)],
        bands,
        "buckets",
        signatures,
    )
    clusters = stage(
        [MinhashDedupCluster(str(work / "buckets"), str(work / "remove"), config=config)],
        1,
        "clusters",
        buckets,
    )
    removed_writer = JsonlWriter(str(work / "removed"), compression=None)
    filtered = stage(
        [
            reader(),
            MinhashDedupFilter(str(work / "remove"), exclusion_writer=removed_writer),
            JsonlWriter(str(work / "kept"), compression=None),
        ],
        cores,
        "filter",
        clusters,
    )
    start = time.perf_counter()
    filtered.run()  # runs the stages it depends on first
    seconds = time.perf_counter() - start
    removed = {
        json.loads(line)["id"]
        for path in (work / "removed").glob("*.jsonl")
        for line in path.read_text().splitlines()
    }
    return removed, seconds
