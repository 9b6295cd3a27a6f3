"""Numbered feedback: a report a job already holds is not applied again.

A client numbers the reports of each rank it runs, 1, 2, … under a random
*sender* id of its own (``OpenSession.feedback_sender``, ``Feedback.sequence``),
and keeps every report until the server says the job's checkpoint holds it
(``SessionResponse.feedback_saved``). When its session dies with the replica
that served it, the client resends what it kept on the next session: reports
the dead replica never received, received but never saved, or saved. The job
applies a report only if its number is above the latest it applied for that
rank and sender, so a resent report changes nothing twice (the estimator of
unreported rows sees each report once, and an old loss never overwrites a
newer one). The latest numbers are saved with the feedback table, in the same
file, so a restored table and its numbers always agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Applied = dict[int, tuple[str, int]]
"""Per rank: the sender and number of the latest numbered report applied."""


@dataclass(frozen=True)
class Numbered:
    """Where a report comes from: its rank, its client (sender) and its number there."""

    rank: int
    sender: str
    sequence: int


def is_new(applied: Applied, report: Numbered) -> bool:
    """Whether ``report`` is not yet applied (another sender's numbers start afresh: a
    trainer restarted from its own checkpoint runs a new client)."""
    held = applied.get(report.rank)
    return held is None or held[0] != report.sender or held[1] < report.sequence


def confirmed(applied: Applied, rank: int, sender: str) -> int:
    """The latest number of ``sender``'s reports for ``rank`` in ``applied`` (0: none)."""
    held = applied.get(rank)
    return held[1] if held is not None and held[0] == sender else 0


def to_arrays(applied: Applied) -> dict[str, np.ndarray]:
    """``applied`` as arrays for the feedback file (none when nothing was numbered)."""
    if not applied:
        return {}
    ranks = sorted(applied)
    return {
        "sequences/ranks": np.asarray(ranks, np.int64),
        "sequences/senders": np.asarray([applied[rank][0] for rank in ranks], np.str_),
        "sequences/numbers": np.asarray([applied[rank][1] for rank in ranks], np.uint64),
    }


def from_arrays(arrays: dict[str, np.ndarray]) -> Applied:
    """Inverse of `to_arrays` (the ``sequences/`` arrays of ``arrays``).

    Raises:
        ValueError: the arrays are not three of one length, or not what `to_arrays` writes.
    """
    found = {key: value for key, value in arrays.items() if key.startswith("sequences/")}
    if not found:
        return {}
    try:
        ranks, senders, numbers = (
            found.pop(f"sequences/{name}") for name in ("ranks", "senders", "numbers")
        )
    except KeyError as missing:
        raise ValueError(f"feedback sequences lack {missing}") from None
    if found or not ranks.ndim == senders.ndim == numbers.ndim == 1:
        raise ValueError("feedback sequences are not three 1-D arrays")
    if not len(ranks) == len(senders) == len(numbers) or senders.dtype.kind != "U":
        raise ValueError("feedback sequences are not one rank, sender and number per entry")
    return {
        int(rank): (str(sender), int(number))
        for rank, sender, number in zip(ranks, senders, numbers, strict=True)
    }
