"""Every selector served end to end; JEST with synchronous and asynchronous learner scores."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from batchcraft.selectors import SELECTORS
from batchcraft.service import BatchClient

pytestmark = pytest.mark.grpc
KNOWN = ["uniform", "coreset", "concept", "hard_negative", "jest", "jest_independent"]


def needs(name: str) -> None:
    if name not in SELECTORS:
        pytest.skip(f"selector {name!r} is not registered yet")


@pytest.mark.parametrize("name", KNOWN)
def test_selector_served_end_to_end(address: str, kept_ids: list[str], name: str) -> None:
    needs(name)
    client = BatchClient(address, "news", name, 4, columns=["id"], job=f"e2e-{name}", seed=1)
    batches = [list(batch["id"]) for batch in client]
    client.close()
    served = [i for batch in batches for i in batch]
    assert batches and all(0 < len(batch) <= 4 for batch in batches)
    assert len(served) == len(set(served)) and set(served) <= set(kept_ids)


def test_jest_synchronous_round_scores_with_the_current_torch_learner(address: str) -> None:
    needs("jest")
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    towers = torch.nn.Linear(8, 8), torch.nn.Linear(8, 8)
    rounds = []

    def scorer(candidates: dict[str, Any]) -> dict[str, Any]:
        rounds.append(len(candidates["id"]))
        with torch.no_grad():
            anchors = torch.nn.functional.normalize(
                towers[0](torch.tensor(candidates["embedding"])), dim=1
            )
            pairs = torch.nn.functional.normalize(
                towers[1](torch.tensor(candidates["pair_embedding"])), dim=1
            )
        return {
            "learner_embeddings": anchors.numpy(),
            "learner_pair_embeddings": pairs.numpy(),
            "learner_logit_scale": 10.0,
            "learner_logit_bias": -10.0,
        }

    client = BatchClient(
        address,
        "news",
        "jest",
        4,
        columns=["id"],
        selector_params={"num_chunks": 2},
        scoring="sync",
        scorer=scorer,
        score_columns=["embedding", "pair_embedding"],
        job="jest-sync",
    )
    infos = []
    for _ in client:
        assert client.last_meta is not None
        infos.append(client.last_meta.info)
    client.close()
    assert len(rounds) == len(infos) > 0
    assert rounds[0] == 20  # super-batch of 4 / (1 - 0.8)
    assert all(
        info["selector"] == "jest" and info["scoring"] == "pairwise" and info["joint"]
        for info in infos
    )


def test_jest_asynchronous_losses_change_later_selections(
    address: str, kept_ids: list[str]
) -> None:
    needs("jest")
    client = BatchClient(
        address, "news", "jest", 4, columns=["id"], max_in_flight=1, job="jest-async"
    )
    infos = []
    for batch in client:
        assert client.last_meta is not None
        infos.append(client.last_meta.info)
        client.report(kept_ids, losses=np.linspace(0.0, 5.0, len(kept_ids)))
        del batch
    client.close()
    assert infos[0].get("fallback_from") == "jest"  # no learner scores yet
    assert all(info.get("scoring") == "per_example" for info in infos[2:])
