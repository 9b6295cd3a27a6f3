"""What the fuzz test of the service sends: hypothesis strategies of whole calls.

A call is a session (a mostly valid `OpenSession` with up to two wrong fields, and
a script of `Action`s that `fuzz_session.run_session` plays), or request bytes,
random or mutated from a valid open, for a generic call of either method.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from hypothesis import strategies as st

from batchcraft.api.v1 import batch_service_pb2 as pb

SELECTORS = ["", "uniform", "coreset", "concept", "hard_negative", "jest", "jest_independent"]
PARAMETERS = [
    "pool_multiplier", "adam_betas", "features", "filter_ratio", "variant", "cap_factor",
    "target_distribution", "cluster_size", "num_mined_negatives", "num_chunks", "temperature",
    "method", "scoring", "bogus",
]  # fmt: skip
HUGE = 2**64 - 1

positions = st.builds(
    pb.Position,
    epoch=st.one_of(st.integers(0, 3), st.sampled_from([2**32, HUGE])),
    step=st.one_of(st.integers(0, 30), st.sampled_from([2**32, HUGE])),
)
json_values = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=8)
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
selector_params = st.one_of(
    st.sampled_from(["", "{}", "[]", "{", "null", '{"a": ' + "[" * 3000 + "]" * 3000 + "}"]),
    st.dictionaries(st.sampled_from(PARAMETERS), json_values, max_size=3).map(json.dumps),
    st.text(max_size=20),
)
VALID_FIELDS = {
    "selector": st.sampled_from(["uniform", *SELECTORS]),
    "batch_size": st.integers(1, 20),
    "seed": st.integers(0, HUGE),
    "columns": st.lists(
        st.sampled_from(["id", "text", "embedding", "concepts"]), max_size=3, unique=True
    ),
    "job": st.sampled_from(["", "", "", "", "", "fuzz-a"]),  # "": derived from the parameters
    "max_in_flight": st.integers(0, 4),
    "scoring": st.integers(0, 2),
    "last_batch": st.integers(0, 2),
    "num_epochs": st.integers(0, 2),
    "max_batches_per_message": st.integers(0, 20),
}
BAD_FIELDS = {
    "dataset": st.one_of(st.text(max_size=6), st.just("n" * 300)),
    "selector": st.one_of(st.text(max_size=6), st.just("s" * 300)),
    "selector_params_json": selector_params,
    "batch_size": st.sampled_from([0, 101, 102, 2**20 + 1, 2**32 - 1]),
    "rank": st.sampled_from([3, 2**32 - 1]),
    "world_size": st.sampled_from([0, 65536, 65537, 2**32 - 1]),
    "columns": st.lists(st.sampled_from(["nope", "", "x" * 300]), min_size=1, max_size=2),
    "score_columns": st.lists(st.sampled_from(["id", "text", "nope"]), min_size=1, max_size=2),
    "job": st.sampled_from(["x" * 300, "\x00/../..", "fuzz-a"]),
    "max_in_flight": st.just(2**32 - 1),
    "scoring": st.integers(3, 2**31 - 1),
    "last_batch": st.integers(3, 2**31 - 1),
    "start": positions,
}


@st.composite
def open_sessions(draw: st.DrawFn) -> pb.OpenSession:
    """A valid `OpenSession` of ``news``, with up to two fields made wrong (often none)."""
    fields = {name: draw(strategy) for name, strategy in VALID_FIELDS.items()}
    fields["world_size"] = draw(st.integers(1, 3))
    fields["rank"] = draw(st.integers(0, fields["world_size"] - 1))
    wrong = st.lists(st.sampled_from(sorted(BAD_FIELDS)), min_size=1, max_size=2, unique=True)
    for name in draw(st.one_of(st.just([]), st.just([]), wrong)):
        fields[name] = draw(BAD_FIELDS[name])
    fields.setdefault("dataset", "news")
    return pb.OpenSession(**fields)


ACTIONS = [
    *["ack"] * 6, *["feedback"] * 2, *["scores"] * 2,  # what a correct client sends, mostly
    "ack_count", "ack_random", "feedback_nonfinite", "feedback_random", "scores_random", "open",
]  # fmt: skip


@dataclass(frozen=True)
class Action:
    """One request the script sends, built from what the session received so far."""

    kind: str
    count: int
    position: pb.Position
    losses: tuple[float, ...]
    payload: bytes


actions = st.builds(
    Action,
    kind=st.sampled_from(ACTIONS),
    count=st.one_of(st.integers(0, 4), st.just(2**32 - 1)),
    position=positions,
    losses=st.lists(st.floats(-1e3, 1e3, width=32), min_size=1, max_size=4).map(tuple),
    payload=st.binary(max_size=64),
)


def mutated(data: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    """``data`` with each (position, deleted length, inserted bytes) edit applied."""
    for position, deleted, inserted in edits:
        at = position % (len(data) + 1)
        data = data[:at] + inserted + data[at + deleted :]
    return data


edits = st.lists(
    st.tuples(st.integers(0, 500), st.integers(0, 8), st.binary(max_size=4)), min_size=1, max_size=4
)
raw_session_calls = st.tuples(
    open_sessions(), edits, st.lists(st.binary(max_size=32), max_size=3)
).map(
    lambda drawn: [
        mutated(pb.SessionRequest(open=drawn[0]).SerializeToString(), drawn[1]),
        *drawn[2],
    ]
)
sessions = st.tuples(st.just("session"), open_sessions(), st.lists(actions, max_size=12))
CALLS = {
    "session": sessions,
    "raw session": st.tuples(st.just("raw session"), raw_session_calls, st.none()),
    "raw list": st.tuples(st.just("raw list"), st.binary(max_size=64), st.none()),
}
calls = st.sampled_from(["session"] * 4 + ["raw session", "raw list"]).flatmap(CALLS.__getitem__)
