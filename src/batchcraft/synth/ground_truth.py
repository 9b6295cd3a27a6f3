"""``SynthCorpus``: the files of a generated corpus and its ground truth, read back from disk.

``generate_corpus`` returns ``load_corpus(out_dir)``, so what a test sees in memory is
exactly what a benchmark reading the directory later sees.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from batchcraft.errors import DatasetError

DUPLICATE_KINDS = ("exact", "near", "semantic")
"""Ground-truth kinds of injected duplicates."""


@dataclass(frozen=True)
class SynthCorpus:
    """A generated corpus: where its files are and what was injected into it.

    Attributes:
        out_dir: The directory everything was written to.
        corpus_paths: Source name to its JSONL file, in source order.
        concepts_path: ``concepts.txt``, one concept name per line.
        labels_path: ``labels.jsonl``, ``{"id", "source", "topic"}`` for every corpus row.
        ground_truth_path: ``ground_truth.jsonl``, one record per injected item.
        bad_path: ``bad/bad.jsonl``, or ``None`` when bad rows were not written.
        rows_per_source: Source name to its number of rows.
        concepts: The concept vocabulary, most frequent first.
        duplicates: Duplicate id to ``(kind, original_id)``; kind is exact, near or semantic.
        chains: ``(a, b, c)`` id triples where b is a near duplicate of a and c of b.
        mismatched_pairs: Ids of rows whose answer belongs to an unrelated row.
        bad_rows: Bad row id to its rejection reason.
        topic_by_id: Corpus row id to its topic name.
    """

    out_dir: Path
    corpus_paths: dict[str, Path]
    concepts_path: Path
    labels_path: Path
    ground_truth_path: Path
    bad_path: Path | None
    rows_per_source: dict[str, int]
    concepts: tuple[str, ...]
    duplicates: dict[str, tuple[str, str]]
    chains: tuple[tuple[str, str, str], ...]
    mismatched_pairs: tuple[str, ...]
    bad_rows: dict[str, str]
    topic_by_id: dict[str, str]

    @property
    def num_rows(self) -> int:
        """Rows in the corpus files (bad rows not included)."""
        return sum(self.rows_per_source.values())

    def duplicates_of_kind(self, kind: str) -> dict[str, str]:
        """Duplicate id to original id for one kind (``exact``, ``near`` or ``semantic``)."""
        if kind not in DUPLICATE_KINDS:
            raise ValueError(f"{kind=} is not one of {DUPLICATE_KINDS}")
        return {dup: original for dup, (k, original) in self.duplicates.items() if k == kind}


def _read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def load_corpus(out_dir: str | Path) -> SynthCorpus:
    """Reads the files and ground truth of a corpus written by ``generate_corpus``.

    Raises:
        DatasetError: If ``out_dir`` does not hold a generated corpus.
    """
    root = Path(out_dir)
    paths = [root / name for name in ("concepts.txt", "labels.jsonl", "ground_truth.jsonl")]
    missing = [str(path) for path in paths if not path.exists()]
    if missing:
        raise DatasetError(f"{root} is not a generated synthetic corpus: missing {missing}")
    labels = _read_jsonl(root / "labels.jsonl")
    rows_per_source: dict[str, int] = {}
    for label in labels:
        rows_per_source[label["source"]] = rows_per_source.get(label["source"], 0) + 1
    records = _read_jsonl(root / "ground_truth.jsonl")
    duplicates = {
        record["id"]: (record["kind"], record["original_id"])
        for record in records
        if record["kind"] in DUPLICATE_KINDS
    }
    chains = tuple(
        (record["chain_root_id"], record["original_id"], record["id"])
        for record in records
        if "chain_root_id" in record and record["original_id"] != record["chain_root_id"]
    )
    bad_path = root / "bad" / "bad.jsonl"
    return SynthCorpus(
        out_dir=root,
        corpus_paths={source: root / "corpus" / f"{source}.jsonl" for source in rows_per_source},
        concepts_path=root / "concepts.txt",
        labels_path=root / "labels.jsonl",
        ground_truth_path=root / "ground_truth.jsonl",
        bad_path=bad_path if bad_path.exists() else None,
        rows_per_source=rows_per_source,
        concepts=tuple(root.joinpath("concepts.txt").read_text(encoding="utf-8").splitlines()),
        duplicates=duplicates,
        chains=chains,
        mismatched_pairs=tuple(r["id"] for r in records if r["kind"] == "mismatched_pair"),
        bad_rows={r["id"]: r["reason"] for r in records if r["kind"] == "bad"},
        topic_by_id={label["id"]: label["topic"] for label in labels},
    )
