"""The real encoder: offline loading, unit norm, and reduced precision agreeing with fp32."""

from __future__ import annotations

import numpy as np
import pytest

from batchcraft.errors import ConfigError
from batchcraft.pipeline.embedding.sentence_encoder import (
    EncoderSpec,
    SentenceEncoder,
    resolve_model_path,
    resolve_precision,
)

pytestmark = pytest.mark.model

TEXTS = [
    f"Sentence {i} about {topic} and how it relates to everyday life."
    for i, topic in enumerate(
        ["telescopes", "bread", "interest rates", "football", "gardening", "law", "music", "travel"]
        * 3
    )
]


def test_bf16_embeddings_agree_with_fp32() -> None:
    path = resolve_model_path(None)
    full = SentenceEncoder(EncoderSpec(path, "fp32")).encode(TEXTS)
    reduced = SentenceEncoder(EncoderSpec(path, "bf16")).encode(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(full, axis=1), 1.0, atol=1e-5)
    cosines = np.sum(full * reduced, axis=1)
    assert cosines.min() >= 0.999, cosines.min()
    same_topic = full[0] @ full[8]
    other_topic = full[0] @ full[1]
    assert same_topic > other_topic, "the model puts same-topic sentences closer"


def test_auto_precision_is_fp32_without_native_support(monkeypatch: pytest.MonkeyPatch) -> None:
    import batchcraft.pipeline.embedding.sentence_encoder as embed

    monkeypatch.setattr(embed, "native_low_precision", lambda: None)
    assert resolve_precision("auto") == "fp32"
    monkeypatch.setattr(embed, "native_low_precision", lambda: "bf16")
    assert resolve_precision("auto") == "bf16"
    assert resolve_precision("fp32") == "fp32"


def test_model_must_be_a_local_directory(tmp_path) -> None:
    with pytest.raises(ConfigError, match="never downloads"):
        resolve_model_path("sentence-transformers/all-MiniLM-L6-v2")
