"""Concept annotation: given labels, or zero-shot from a vocabulary by embedding similarity."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from batchcraft.errors import InputError


def read_vocabulary(path: str | Path) -> list[str]:
    """Concept names, one per line; blank lines and ``#`` comments ignored, duplicates dropped."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read concept vocabulary {path}: {exc}") from exc
    names = list(
        dict.fromkeys(line.strip() for line in lines if line.strip() and not line.startswith("#"))
    )
    if not names:
        raise InputError(f"concept vocabulary {path} is empty")
    return names


def zero_shot_concepts(
    embeddings: np.ndarray,
    concept_embeddings: np.ndarray,
    names: list[str],
    threshold: float,
    max_concepts: int,
) -> list[list[str]]:
    """For each row, up to ``max_concepts`` concept names at cosine >= threshold, best first."""
    if len(embeddings) == 0:
        return []
    scores = np.asarray(embeddings, np.float32) @ np.asarray(concept_embeddings, np.float32).T
    count = min(max_concepts, len(names))
    top = np.argsort(-scores, axis=1, kind="stable")[:, :count]
    top_scores = np.take_along_axis(scores, top, axis=1)
    return [
        [names[j] for j, s in zip(row, row_scores, strict=True) if s >= threshold]
        for row, row_scores in zip(top, top_scores, strict=True)
    ]
