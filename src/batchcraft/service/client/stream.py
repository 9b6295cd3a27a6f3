"""One session of a `BatchClient`: its requests, and its responses as decoded batches.

The call sends the session's requests in order: the open message, then acks,
feedback and scores as they come. On the way back, batches are read straight
from the received bytes (Arrow reads the IPC payload in place, see
`batchcraft.service.wire.response`), several small batches may arrive in one
message, and flow credit is returned with one ack per half window of batches
rather than one per batch, or sooner when the last ack is `ACK_INTERVAL_SECONDS`
old: a trainer slow enough to take minutes per half window still tells the
server it is there (a server ends sessions that are silent for its idle timeout).
"""

from __future__ import annotations

import json
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import grpc

from batchcraft.api.v1 import batch_service_pb2 as pb
from batchcraft.batcher.config import JobConfig, Position, StreamConfig
from batchcraft.service.client.connection import BatchServiceError, Connection
from batchcraft.service.client.feedback import Scorer, scores_reply
from batchcraft.service.wire import codec
from batchcraft.service.wire.header import read_weights
from batchcraft.service.wire.response import BatchView, read_response

LOG = logging.getLogger("batchcraft.client")
END_TIMEOUT = 5.0  # seconds a stopped session waits for the server to end the call
ACK_INTERVAL_SECONDS = 10.0
SCORING_MODES = {
    "async": pb.SCORING_MODE_ASYNC,
    "sync": pb.SCORING_MODE_SYNC,
    "ahead": pb.SCORING_MODE_AHEAD,
}
"""Longest time between acks while batches arrive (well inside a server's idle timeout)."""


class Requests:
    """The requests of one session, sent in order by the call until `end`."""

    def __init__(self, first: Iterable[pb.SessionRequest]) -> None:
        self._queue: queue.Queue[pb.SessionRequest | None] = queue.Queue()
        for message in first:
            self._queue.put(message)

    def put(self, message: pb.SessionRequest) -> None:
        """Send ``message`` after those already queued."""
        self._queue.put(message)

    def end(self) -> None:
        """No more requests: the call half-closes once the queued ones are sent."""
        self._queue.put(None)

    def __iter__(self) -> Iterator[pb.SessionRequest]:
        while (message := self._queue.get()) is not None:
            yield message


def open_request(
    config: JobConfig,
    stream: StreamConfig,
    job: str | None,
    max_batches_per_message: int,
    start: Position | None,
) -> pb.SessionRequest:
    """The first request of a session: the job's parameters, the stream's and where it starts."""
    request = pb.OpenSession(
        dataset=config.dataset,
        selector=config.selector,
        selector_params_json=json.dumps(config.selector_params),
        batch_size=config.batch_size,
        rank=stream.rank,
        world_size=config.world_size,
        seed=config.seed,
        columns=list(stream.columns),
        job=job or "",
        max_in_flight=stream.max_in_flight,
        num_epochs=stream.num_epochs,
        scoring=SCORING_MODES[config.scoring],
        last_batch=pb.LAST_BATCH_DROP if config.last_batch == "drop" else pb.LAST_BATCH_PARTIAL,
        score_columns=list(stream.score_columns),
        max_batches_per_message=max_batches_per_message,
    )
    if start is not None:
        request.start.CopyFrom(pb.Position(epoch=start.epoch, step=start.step))
    return pb.SessionRequest(open=request)


class SessionStream:
    """Iterates one session's batches, each with its header, acknowledging them as it goes.

    Args:
        connection: where the call is opened.
        requests: the session's requests, the open message first.
        on_opened: called with the server's `pb.SessionOpened`.
        scorer: answers synchronous scoring rounds (None: the job scores asynchronously).
        on_saved: called with the number of the latest report the job's checkpoint
            holds (``FeedbackSaved``, `batchcraft.service.client.feedback_log`).
    """

    def __init__(
        self,
        connection: Connection,
        requests: Requests,
        on_opened: Callable[[pb.SessionOpened], None],
        scorer: Scorer | None,
        on_saved: Callable[[int], None] = lambda sequence: None,
    ) -> None:
        self.requests = requests
        self._on_saved = on_saved
        self.call = connection.open_session(iter(requests))
        self._on_opened = on_opened
        self._scorer = scorer
        self._converter: codec.NumpyConverter | None = None
        self._num_epochs = 0
        self._ack_every = 0
        self._unacknowledged = 0
        self._acknowledged_at = time.monotonic()
        self._following = pb.Position()  # the position after the latest batch

    def __iter__(self) -> Iterator[tuple[dict[str, Any], pb.Batch]]:
        for data in self.call:
            response = read_response(data)
            if isinstance(response, list):
                for view in response:
                    yield self._receive(view), view.header
            else:
                self._handle(response)

    def end_early(self, acknowledge: bool) -> None:
        """The consumer stopped: acknowledge what it received and let the server end the
        call. The server sends at most what credit remains before it sees the end of
        the requests; those batches were never yielded and are dropped here.

        Args:
            acknowledge: whether the received batches were consumed (else the caller
                cancels the call, and the server counts none of them).
        """
        if not acknowledge or sys.is_finalizing():
            return  # no thread may start while Python shuts down
        if self._unacknowledged:
            self._acknowledge()
        self.requests.end()
        timer = threading.Timer(END_TIMEOUT, self.call.cancel)
        timer.start()
        try:
            for _ in self.call:
                pass
        except grpc.RpcError:
            pass  # the server's view of a session it did not finish is not the consumer's
        finally:
            timer.cancel()

    def close(self) -> None:
        """End the requests and cancel the call (a no-op on a call that has ended)."""
        self.requests.end()
        self.call.cancel()

    def _handle(self, response: pb.SessionResponse) -> None:
        kind = response.WhichOneof("kind")
        if kind == "opened":
            opened = response.opened
            self._on_opened(opened)
            self._converter = codec.NumpyConverter(codec.read_schema(opened.arrow_schema))
            self._num_epochs = opened.num_epochs
            # Credit returns at half window: the server never waits for it.
            self._ack_every = max(1, opened.max_in_flight // 2)
        elif kind == "feedback_saved":
            self._on_saved(response.feedback_saved.sequence)
        elif kind == "score_request":
            assert self._scorer is not None, "the server only asks for scores in sync mode"
            self.requests.put(scores_reply(response.score_request, self._scorer))

    def _receive(self, view: BatchView) -> dict[str, Any]:
        """Decode a batch, then return credit if half a window (or the last epoch) is done."""
        if self._converter is None:
            raise BatchServiceError(
                grpc.StatusCode.INTERNAL, "the server sent batches before 'opened'"
            )
        batch = self._converter.read(view.payload)
        weights = read_weights(view.header)
        if weights is not None:
            batch["weight"] = weights
        self._unacknowledged += 1
        self._following = view.header.next
        overdue = time.monotonic() - self._acknowledged_at > ACK_INTERVAL_SECONDS
        if self._unacknowledged >= self._ack_every or self._finished() or overdue:
            self._acknowledge()
        return batch

    def _finished(self) -> bool:
        """Whether the latest batch was the last of the requested epochs."""
        return bool(self._num_epochs) and self._following.epoch >= self._num_epochs

    def _acknowledge(self) -> None:
        ack = pb.Ack(count=self._unacknowledged, next=self._following)
        self.requests.put(pb.SessionRequest(ack=ack))
        self._unacknowledged = 0
        self._acknowledged_at = time.monotonic()


def warn_if_finished(opened: pb.SessionOpened) -> None:
    """An iteration that will yield nothing is almost always a job id used again."""
    if opened.num_epochs and opened.start.epoch >= opened.num_epochs:
        LOG.warning(
            "job %r already served its %d epoch(s) to this rank: nothing to iterate. Pass "
            "another job= for a new run, or a larger num_epochs to continue this one.",
            opened.job,
            opened.num_epochs,
        )
