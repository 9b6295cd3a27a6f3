"""The embed stage at the encoder's own speed: length bucketing changes neither the order nor
the values of the embeddings, and each task gets the cores and GPU Spark gave it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from batchcraft.pipeline.embedding.sentence_encoder import EncoderSpec, length_order
from batchcraft.pipeline.embedding.task_resources import (
    ROWS_PER_EMBED_PARTITION,
    embed_partitions,
    spec_for_task,
    task_slots,
)
from batchcraft.synth.news import news_articles

FP32_TOLERANCE = 1e-5
"""fp32 vectors of one text in differently padded batches differ by summation order only."""


def _mixed_lengths(count: int) -> list[str]:
    """News articles with a few very short texts among them, so batches differ in padding."""
    texts = news_articles(count, seed=5)
    for position in range(0, count, 7):
        texts[position] = " ".join(texts[position].split()[:3])
    return texts


def test_length_order_is_longest_first_and_stable() -> None:
    order = length_order(["bb", "a", "cccc", "dd", ""])
    assert order.tolist() == [2, 0, 3, 1, 4]


def test_every_task_slot_gets_work_in_whole_waves() -> None:
    assert task_slots(total_cores=16, task_cpus=4) == 4
    assert task_slots(total_cores=2, task_cpus=4) == 1  # a task may ask for more than exists
    for rows in (0, 1, 3_999, 4_001, 100_000):
        for slots in (1, 2, 48):
            partitions = embed_partitions(rows, slots)
            assert partitions % slots == 0, "a partial last wave leaves workers idle"
            assert partitions * ROWS_PER_EMBED_PARTITION >= rows
            assert partitions == slots or rows > (partitions - slots) * ROWS_PER_EMBED_PARTITION


def test_each_task_uses_its_cores_and_its_assigned_gpu() -> None:
    spec = EncoderSpec("/models/m", "bf16")
    cpu_task = spec_for_task(spec, task_cpus=4, gpu_addresses=[])
    assert (cpu_task.num_threads, cpu_task.device) == (4, None)
    gpu_task = spec_for_task(spec, task_cpus=1, gpu_addresses=["3"])
    assert (gpu_task.num_threads, gpu_task.device) == (1, "cuda:3")
    fixed = spec_for_task(replace(spec, num_threads=2), task_cpus=8, gpu_addresses=[])
    assert fixed.num_threads == 2, "threads the caller fixed are kept"


@pytest.mark.model
def test_bucketing_keeps_order_and_values_of_the_plain_encoder() -> None:
    from sentence_transformers import SentenceTransformer

    from batchcraft.pipeline.embedding.sentence_encoder import SentenceEncoder, resolve_model_path

    texts = _mixed_lengths(150)
    spec = EncoderSpec(resolve_model_path(None), "fp32", batch_size=16)
    bucketed = SentenceEncoder(spec).encode(texts)
    in_order = SentenceEncoder(replace(spec, bucket_by_length=False)).encode(texts)
    plain = SentenceTransformer(spec.model_path, device="cpu").encode(
        texts, batch_size=16, normalize_embeddings=True
    )
    np.testing.assert_allclose(bucketed, in_order, atol=FP32_TOLERANCE)
    np.testing.assert_allclose(bucketed, plain, atol=FP32_TOLERANCE)
    assert np.sum(bucketed[0] * bucketed[1]) < 0.999, "distinct texts, distinct vectors"


@pytest.mark.spark
@pytest.mark.model
def test_embed_stage_output_is_unchanged_by_length_bucketing(spark: Any) -> None:
    from batchcraft.pipeline import embed
    from batchcraft.pipeline.embedding.sentence_encoder import resolve_model_path

    texts = _mixed_lengths(300)
    ids = [f"doc-{number:04d}" for number in range(len(texts))]
    frame = spark.createDataFrame(list(zip(ids, texts, strict=True)), "id string, text string")
    frame = frame.repartition(3).persist()  # rows of every length in every partition
    input_ids = [row.id for row in frame.select("id").collect()]
    spec = EncoderSpec(resolve_model_path(None), "fp32", batch_size=16)
    results = {}
    for bucketing in (True, False):
        rows = embed(frame, replace(spec, bucket_by_length=bucketing)).collect()
        assert [row.id for row in rows] == input_ids, "rows come out in their input order"
        results[bucketing] = np.array([row.embedding for row in rows], dtype=np.float32)
    frame.unpersist()
    np.testing.assert_allclose(results[True], results[False], atol=FP32_TOLERANCE)
    np.testing.assert_allclose(np.linalg.norm(results[True], axis=1), 1.0, atol=1e-5)
