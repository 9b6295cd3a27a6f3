"""``generate_corpus``: write the deterministic demo corpus and its ground truth.

Layout written under ``out_dir``::

    corpus/<source>.jsonl   {"id", "text", "answer", "tags", "topic"} per line, one file per source
    concepts.txt            the concept vocabulary, one name per line, most frequent first
    labels.jsonl            {"id", "source", "topic"} for every corpus row
    ground_truth.jsonl      one record per injected item (duplicate, mismatched pair, bad row)
    bad/bad.jsonl           lines a validating reader must reject (only with bad_rows)
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from batchcraft.errors import ConfigError
from batchcraft.synth.bad_rows import bad_lines
from batchcraft.synth.ground_truth import SynthCorpus, load_corpus
from batchcraft.synth.rows import DuplicateCounts, Row, base_rows, duplicate_rows
from batchcraft.synth.vocabulary import CONCEPTS_BY_RANK, TOPICS

DEFAULT_SOURCES: Mapping[str, float] = {"web": 0.70, "books": 0.20, "forum": 0.08, "wiki": 0.02}
"""Source name to its share of the rows: very different sizes, as in real corpora."""


@dataclass(frozen=True)
class CorpusOptions:
    """Everything that determines the generated corpus; equal options give equal bytes.

    Attributes:
        num_rows: Rows in the corpus files, duplicates included, bad rows excluded.
        seed: Seed of every random choice.
        bad_rows: Whether to write ``bad/bad.jsonl``.
        exact_fraction: Share of rows that are exact duplicates (up to spaces and case).
        near_fraction: Share of rows that are near duplicates (typo, dropped or swapped word).
        semantic_fraction: Share of rows that are paraphrases of another row.
        chain_fraction: Share of rows that start a chain A, B≈A, C≈B (adds B and C).
        mismatched_fraction: Share of rows whose answer belongs to a row of another topic.
        concept_exponent: Exponent of the Zipf law over concept ranks.
        sources: Source name to share of rows; shares must sum to 1.
        bad_copies: How many lines of each bad variant to write.
    """

    num_rows: int = 2000
    seed: int = 0
    bad_rows: bool = True
    exact_fraction: float = 0.05
    near_fraction: float = 0.05
    semantic_fraction: float = 0.05
    chain_fraction: float = 0.005
    mismatched_fraction: float = 0.10
    concept_exponent: float = 1.1
    sources: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_SOURCES))
    bad_copies: int = 2

    def __post_init__(self) -> None:
        if self.num_rows < 20:
            raise ConfigError(f"num_rows={self.num_rows} must be >= 20")
        fractions = {
            "exact_fraction": self.exact_fraction,
            "near_fraction": self.near_fraction,
            "semantic_fraction": self.semantic_fraction,
            "chain_fraction": self.chain_fraction,
            "mismatched_fraction": self.mismatched_fraction,
        }
        for name, value in fractions.items():
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"{name}={value} must be in [0, 1)")
        # Each duplicate needs its own untouched original, and mismatched rows are
        # originals of nobody: base rows must cover all of them.
        copies = self.exact_fraction + self.near_fraction + self.semantic_fraction
        needed = 2 * copies + 3 * self.chain_fraction + self.mismatched_fraction
        if needed > 0.95:
            raise ConfigError(f"fractions {fractions} leave too few distinct base rows")
        if not self.sources or any(share <= 0 for share in self.sources.values()):
            raise ConfigError(f"sources={dict(self.sources)} must be non-empty with shares > 0")
        if abs(sum(self.sources.values()) - 1.0) > 1e-6:
            raise ConfigError(f"source shares {dict(self.sources)} must sum to 1")
        if self.bad_copies < 1:
            raise ConfigError(f"bad_copies={self.bad_copies} must be >= 1")

    def duplicate_counts(self) -> DuplicateCounts:
        """Duplicate counts for ``num_rows``; at least one chain when chains are asked for."""
        chains = round(self.chain_fraction * self.num_rows)
        return DuplicateCounts(
            exact=round(self.exact_fraction * self.num_rows),
            near=round(self.near_fraction * self.num_rows),
            semantic=round(self.semantic_fraction * self.num_rows),
            chains=max(chains, 1) if self.chain_fraction > 0 else 0,
        )


def generate_corpus(
    out_dir: str | Path,
    num_rows: int = 2000,
    seed: int = 0,
    bad_rows: bool = True,
    **options: object,
) -> SynthCorpus:
    """Writes the synthetic demo corpus under ``out_dir`` and returns its ground truth.

    Args:
        out_dir: Directory to write to (created; files of a previous run are overwritten).
        num_rows: Rows in the corpus files, duplicates included.
        seed: Seed of every random choice; equal arguments give byte-identical files.
        bad_rows: Whether to write ``bad/bad.jsonl`` with rows a reader must reject.
        **options: Any other field of ``CorpusOptions`` (e.g. ``near_fraction=0.1``).

    Returns:
        The paths written and the ground truth, as ``load_corpus(out_dir)`` would read it.

    Example:
        >>> corpus = generate_corpus("demo", num_rows=2000)  # doctest: +SKIP
        >>> corpus.duplicates["web-000017"]  # doctest: +SKIP
        ('near', 'books-000102')
    """
    config = CorpusOptions(num_rows=num_rows, seed=seed, bad_rows=bad_rows, **options)  # type: ignore[arg-type]
    rng = random.Random(config.seed)
    counts = config.duplicate_counts()
    rows = base_rows(rng, num_rows - counts.total_rows, config.concept_exponent)
    num_base = len(rows)
    rows += duplicate_rows(rng, rows, counts)
    sources, ids = _assign_sources(rng, len(rows), config.sources)
    records = _duplicate_records(rows, ids)
    answers, mismatch_records = _mismatch_answers(rng, rows, num_base, ids, config)
    records += mismatch_records

    root = Path(out_dir)
    (root / "corpus").mkdir(parents=True, exist_ok=True)
    _write_corpus(root, rows, answers, sources, ids, config.sources)
    (root / "concepts.txt").write_text("".join(f"{name}\n" for name in CONCEPTS_BY_RANK))
    if config.bad_rows:
        records += _write_bad_rows(root, rng, config.bad_copies)
    else:
        (root / "bad" / "bad.jsonl").unlink(missing_ok=True)  # left by an earlier run
    _write_jsonl(root / "ground_truth.jsonl", records)
    return load_corpus(root)


def _source_counts(num_rows: int, shares: Mapping[str, float]) -> list[int]:
    # Largest remainder: the counts sum to num_rows and each is within 1 of its share.
    exact = [share * num_rows for share in shares.values()]
    counts = [int(value) for value in exact]
    by_remainder = sorted(range(len(exact)), key=lambda index: counts[index] - exact[index])
    for index in by_remainder[: num_rows - sum(counts)]:
        counts[index] += 1
    return counts


def _assign_sources(
    rng: random.Random, num_rows: int, shares: Mapping[str, float]
) -> tuple[list[str], list[str]]:
    """Source and id of every row; rows are shuffled so duplicates land in any source."""
    order = list(range(num_rows))
    rng.shuffle(order)
    sources = [""] * num_rows
    ids = [""] * num_rows
    start = 0
    for name, count in zip(shares, _source_counts(num_rows, shares), strict=True):
        width = max(6, len(str(count)))
        for number, row in enumerate(order[start : start + count]):
            sources[row] = name
            ids[row] = f"{name}-{number:0{width}d}"
        start += count
    return sources, ids


def _duplicate_records(rows: list[Row], ids: list[str]) -> list[dict[str, object]]:
    records: list[dict[str, object]] = []
    for position, row in enumerate(rows):
        if row.original is None:
            continue
        record: dict[str, object] = {"id": ids[position], "kind": row.kind}
        record["original_id"] = ids[row.original]
        for key, value in row.details.items():
            if key == "chain_root" and isinstance(value, int):
                record["chain_root_id"] = ids[value]
            else:
                record[key] = value
        records.append(record)
    return records


def _mismatch_answers(
    rng: random.Random, rows: list[Row], num_base: int, ids: list[str], config: CorpusOptions
) -> tuple[list[str], list[dict[str, object]]]:
    """Answers after swapping in other-topic answers for the mismatched share of rows.

    Mismatched rows are base rows that nobody copies, so no duplicate inherits a wrong answer.
    """
    copied = {row.original for row in rows if row.original is not None}
    eligible = [position for position in range(num_base) if position not in copied]
    count = round(config.mismatched_fraction * config.num_rows)
    answers = [row.answer for row in rows]
    records: list[dict[str, object]] = []
    for position in sorted(rng.sample(eligible, min(count, len(eligible)))):
        donor = rng.randrange(num_base)
        while rows[donor].topic == rows[position].topic:
            donor = rng.randrange(num_base)
        answers[position] = rows[donor].answer
        records.append({"id": ids[position], "kind": "mismatched_pair", "answer_from": ids[donor]})
    return answers, records


def _write_corpus(
    root: Path,
    rows: list[Row],
    answers: list[str],
    sources: list[str],
    ids: list[str],
    shares: Mapping[str, float],
) -> None:
    by_source: dict[str, list[int]] = {name: [] for name in shares}
    for position in sorted(range(len(rows)), key=lambda position: ids[position]):
        by_source[sources[position]].append(position)
    labels: list[dict[str, object]] = []
    for name, positions in by_source.items():
        records: list[dict[str, object]] = [
            {
                "id": ids[p],
                "text": rows[p].text,
                "answer": answers[p],
                "tags": list(rows[p].tags),
                "topic": TOPICS[rows[p].topic].name,  # a trainer's label (the demo's)
            }
            for p in positions
        ]
        _write_jsonl(root / "corpus" / f"{name}.jsonl", records)
        labels += [{"id": r["id"], "source": name, "topic": r["topic"]} for r in records]
    _write_jsonl(root / "labels.jsonl", labels)


def _write_bad_rows(root: Path, rng: random.Random, copies: int) -> list[dict[str, object]]:
    lines = bad_lines(rng, copies)
    (root / "bad").mkdir(exist_ok=True)
    (root / "bad" / "bad.jsonl").write_bytes(b"".join(line.line + b"\n" for line in lines))
    return [
        {
            "id": line.id,
            "kind": "bad",
            "reason": line.reason,
            "variant": line.variant,
            "file": "bad/bad.jsonl",
            "line": number,
        }
        for number, line in enumerate(lines, start=1)
    ]


def _write_jsonl(path: Path, records: list[dict[str, object]]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
