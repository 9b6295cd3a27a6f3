"""Run a session's response generator on its own thread, a few responses ahead.

Under the synchronous gRPC server the RPC thread sends one message at a
time and waits until gRPC has taken it. Producing the next message (select,
gather, IPC-encode, pack) on another thread overlaps that work with the wait;
Arrow's gather and serialisation release the GIL, so the two threads share
the two halves of the job rather than taking turns. The queue holds at most
``depth`` responses, and the producer still waits for flow-control credit
before it makes a batch, so a stalled client holds no more memory than before.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

Item = TypeVar("Item")
IsActive = Callable[[], bool]
_POLL = 0.2
_JOIN_TIMEOUT = 10.0


class _End:
    """Marks the end of the produced items."""


class _Failure:
    """Carries the producer's exception to the consumer."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


def prefetch(
    produce: Callable[[IsActive], Iterator[Item]],
    is_active: IsActive,
    depth: int = 2,
    name: str = "prefetch",
) -> Iterator[Item]:
    """Yield the items of ``produce(active)``, computed on a background thread.

    Args:
        produce: called once, in the background thread, with an ``active``
            callable that turns False when the consumer has stopped or
            ``is_active`` does; it must poll it while it waits.
        is_active: whether the consumer (the RPC) is still live.
        depth: items computed ahead of the consumer.
        name: thread name.

    The producer's exception is raised in the consumer; closing this
    generator stops the producer (and closes ``produce``'s generator, in its
    own thread, so its ``finally`` blocks run).
    """
    stop = threading.Event()
    items: queue.Queue[object] = queue.Queue(maxsize=depth)

    def active() -> bool:
        return not stop.is_set() and is_active()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        generator = produce(active)
        try:
            for item in generator:
                if not put(item):
                    return
            put(_End())
        except BaseException as error:  # handed to the consumer, which raises it
            put(_Failure(error))
        finally:
            generator.close()  # type: ignore[attr-defined]

    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()
    try:
        while True:
            try:
                item = items.get(timeout=_POLL)
            except queue.Empty:
                if not is_active():
                    return
                continue
            if isinstance(item, _End):
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join(_JOIN_TIMEOUT)
