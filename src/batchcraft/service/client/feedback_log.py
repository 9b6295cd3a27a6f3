"""The client's side of numbered feedback: keep each report until the job's checkpoint
holds it, and resend what is kept on every new session.

A report sent on a session whose replica dies is lost with it unless the replica
had saved the job since: a SIGKILL loses what arrived after the last checkpoint,
and what was still queued or in flight on the dead call. `FeedbackLog` numbers
each report (``Feedback.sequence``, under this client's random
``OpenSession.feedback_sender``), keeps it until the server's
``FeedbackSaved`` names its number, and resends every kept report, in order and
before any new one, when a session opens. The server applies only numbers above
the latest it applied (`batchcraft.batcher.feedback_sequences`), so a resent
report the job already holds changes nothing.

What is kept is bounded by what the server has not saved yet: about one
checkpoint interval of reports (a server without a checkpoint directory confirms
each report once applied).
"""

from __future__ import annotations

import threading
import uuid
from collections import deque

from batchcraft.api.v1 import batch_service_pb2 as pb
from batchcraft.service.client.stream import Requests


class FeedbackLog:
    """One rank's numbered reports, kept until saved, sent to the open session if any."""

    def __init__(self) -> None:
        self.sender = uuid.uuid4().hex
        self._kept: deque[pb.SessionRequest] = deque()
        self._last = 0  # the latest number given
        self._requests: Requests | None = None
        self._keep = True  # False with a server that predates numbered feedback
        self._lock = threading.Lock()

    def report(self, message: pb.SessionRequest) -> None:
        """Number ``message`` (a ``feedback`` request), keep it, and send it on the open
        session (else it goes with the next one)."""
        with self._lock:
            self._last += 1
            message.feedback.sequence = self._last
            if self._keep:
                self._kept.append(message)
            if self._requests is not None:
                self._requests.put(message)

    def attach(self, requests: Requests | None) -> None:
        """Send to ``requests`` from now on (None: no session is open), every kept report
        first: before any new one, as the server applies numbers in order."""
        with self._lock:
            self._requests = requests
            if requests is not None:
                for message in self._kept:
                    requests.put(message)

    def opened(self, numbered: bool) -> None:
        """A session opened; ``numbered``: its server confirms saved reports. An older
        server never does: keeping reports for it would only grow."""
        with self._lock:
            self._keep = numbered
            if not numbered:
                self._kept.clear()

    def saved(self, sequence: int) -> None:
        """The job's checkpoint holds the reports numbered up to ``sequence``: forget them."""
        with self._lock:
            while self._kept and self._kept[0].feedback.sequence <= sequence:
                self._kept.popleft()

    def __len__(self) -> int:
        """Reports kept."""
        with self._lock:
            return len(self._kept)
