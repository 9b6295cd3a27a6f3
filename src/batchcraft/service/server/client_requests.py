"""The client's half of a session: its requests after ``open``, read on a thread of their own.

`ClientRequests` reads them as they arrive: acks and feedback go to the
session's handlers at once (on this thread, off the send path), scores wait
in a queue for the round that asked for them. It keeps what the sending
thread needs to know about the client: the error one of its requests caused
(raised there, which ends the call with that error's status), whether it
has ended its requests, and when it last sent anything. A session that waits
on a client silent for the idle timeout ends (`SessionIdleError`), so a
stalled or vanished trainer holds a thread and a session slot for minutes,
not for ever.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from batchcraft.api.v1 import batch_service_pb2 as pb
from batchcraft.errors import ConfigError
from batchcraft.service.server.requests import decoded
from batchcraft.service.server.status import SessionIdleError


class ClientRequests:
    """Reads one session's requests and hands them to its handlers.

    Args:
        on_ack: called with each `pb.Ack`.
        on_feedback: called with each `pb.Feedback`.
        on_end: called once the requests end, by the client or an error (to wake waits).
        idle_timeout: seconds a wait on the client may last without a request from it.
    """

    def __init__(
        self,
        on_ack: Callable[[pb.Ack], None],
        on_feedback: Callable[[pb.Feedback], None],
        on_end: Callable[[], None],
        idle_timeout: float,
    ) -> None:
        self.scores: queue.Queue[pb.Scores] = queue.Queue()
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.idle_timeout = idle_timeout
        self._on_ack = on_ack
        self._on_feedback = on_feedback
        self._on_end = on_end
        self._last_heard = time.monotonic()

    def start(self, requests: Iterator[Any]) -> None:
        """Read ``requests`` (the ones after ``open``) on a daemon thread."""
        threading.Thread(target=self._read, args=(requests,), daemon=True).start()

    @property
    def stopped(self) -> bool:
        """Whether the requests ended, or one of them failed."""
        return self.error is not None or self.done.is_set()

    def raise_error(self) -> None:
        """Raise the error a request caused, if one did."""
        if self.error is not None:
            raise self.error

    def idle(self, waiting_since: float) -> bool:
        """Whether a wait that began at ``waiting_since`` (monotonic) has heard nothing from
        the client for the idle timeout (time the server spent working does not count)."""
        return time.monotonic() - max(waiting_since, self._last_heard) > self.idle_timeout

    def check_idle(self, waiting_since: float, awaited: str) -> None:
        """Raise `SessionIdleError` if `idle`; ``awaited`` says what the server waited for."""
        if self.idle(waiting_since):
            raise SessionIdleError(
                f"session idle: nothing from the client for {self.idle_timeout:g} s while the "
                f"server waited for {awaited}; reconnect to resume after the batches received "
                "(BatchClient does so by itself)"
            )

    def _read(self, requests: Iterator[Any]) -> None:
        try:
            for received in requests:
                self._last_heard = time.monotonic()
                request: pb.SessionRequest = decoded(received)
                kind = request.WhichOneof("kind")
                if kind == "ack":
                    self._on_ack(request.ack)
                elif kind == "feedback":
                    self._on_feedback(request.feedback)
                elif kind == "scores":
                    self.scores.put(request.scores)
                elif kind is None:
                    raise ConfigError("a request of no kind (neither ack, feedback nor scores)")
                else:
                    raise ConfigError(f"unexpected {kind!r} message after the session was opened")
        except Exception as error:
            if not isinstance(error, grpc.RpcError):  # a cancelled call: the client left
                self.error = error
        finally:
            self.done.set()
            self._on_end()
