"""The one save/resume check every resumable stream passes (torchdata.nodes' idea).

A stream has ``reset(state | None)``, ``next()`` (StopIteration at its end) and
``state()``. The check runs the stream uninterrupted, then for every step
``k`` runs a fresh stream ``k`` batches, takes its state through JSON, resumes
another fresh stream from it and asserts that the continuation is exactly the
rest of the uninterrupted run, and that both end together.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable
from typing import Any, Protocol


class Resumable(Protocol):
    def reset(self, state: Any = None) -> None: ...

    def next(self) -> Any: ...

    def state(self) -> Any: ...


def drain(stream: Resumable, key: Callable[[Any], Hashable], limit: int) -> list[Hashable]:
    """Up to ``limit`` batches of ``stream``, as ``key`` sees them."""
    out = []
    for _ in range(limit):
        try:
            out.append(key(stream.next()))
        except StopIteration:
            break
    return out


def assert_resumes_exactly(
    make_stream: Callable[[], Resumable],
    key: Callable[[Any], Hashable],
    *,
    limit: int = 1_000,
    cuts: list[int] | None = None,
) -> list[Hashable]:
    """Check resume at every step (or at ``cuts``); returns the uninterrupted run.

    Args:
        make_stream: a fresh stream (a new object each call, with fresh state).
        key: what of a batch must match (e.g. its position and row ids).
        limit: at most this many batches are compared (for endless streams).
        cuts: the steps to cut at; default every step of the run, end included.
    """
    stream = make_stream()
    stream.reset(None)
    reference = drain(stream, key, limit)
    assert reference, "the stream yielded nothing"
    for cut in range(len(reference) + 1) if cuts is None else cuts:
        first = make_stream()
        first.reset(None)
        head = drain(first, key, cut)
        state = json.loads(json.dumps(first.state()))  # a state survives being stored
        resumed = make_stream()
        resumed.reset(state)
        tail = drain(resumed, key, limit - cut)
        assert head + tail == reference, f"resuming after {cut} batches diverged"
    return reference
