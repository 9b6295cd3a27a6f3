"""What a client asks for, decoded and checked before anything acts on it.

An `OpenSession` becomes a `JobConfig` and a `StreamConfig` here, and every
size it holds is bounded first (`check_sizes`; the bounds below, and the
server's ``max_world_size``, are the README's "Security and limits" table), so
no request makes the server do work, or hold state, in proportion to a number
or a length it chose. A value the
client got wrong is the client's error (INVALID_ARGUMENT, or OUT_OF_RANGE for a
position), never an exception of the code that would have used it: unknown
enum numbers, selector parameters that are not JSON, are nested without end or
hold integers of thousands of digits, positions next to 2^64.

Bytes that are not a valid request never reach a handler as an exception
either: the server parses requests with `lenient`, which turns them into
`Undecodable`, and `decoded` refuses that with INVALID_ARGUMENT (grpcio itself
answers INTERNAL "Exception deserializing request!").
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from batchcraft.api.v1 import batch_service_pb2 as pb
from batchcraft.batcher.config import JobConfig, Position, StreamConfig
from batchcraft.errors import ConfigError, truncated_repr
from batchcraft.service.server.status import PositionOutOfRangeError

Message = TypeVar("Message")

MAX_NAME_LENGTH = 256
"""Longest job id, selector name and column name (a job id names files and log lines)."""
MAX_COLUMNS = 1024
"""Most names in ``columns``, and in ``score_columns``."""
MAX_PARAMS_LENGTH = 64 << 10
"""Longest ``selector_params_json`` (characters)."""
MAX_PARAMS_DEPTH = 8
"""Deepest nesting of ``selector_params_json`` (the object itself is depth 1)."""
MAX_POSITION = 2**32 - 1
"""Largest epoch and step of a start position (positions travel as uint64; the next one
after a position must still fit)."""

LAST_BATCH = {
    pb.LAST_BATCH_UNSPECIFIED: "partial",
    pb.LAST_BATCH_PARTIAL: "partial",
    pb.LAST_BATCH_DROP: "drop",
}
SCORING = {
    pb.SCORING_MODE_UNSPECIFIED: "async",
    pb.SCORING_MODE_ASYNC: "async",
    pb.SCORING_MODE_SYNC: "sync",
    pb.SCORING_MODE_AHEAD: "ahead",
}


@dataclass(frozen=True)
class Undecodable:
    """Request bytes that do not parse as the method's message (see `lenient`)."""

    message_type: str
    error: str


def lenient(message_class: Any) -> Callable[[bytes], Any]:
    """A request deserializer for ``message_class`` that returns `Undecodable` instead of
    raising: a handler then refuses it with a status of the client's making."""
    name = message_class.DESCRIPTOR.full_name

    def parse(data: bytes) -> Any:
        try:
            return message_class.FromString(data)
        except Exception as error:  # whatever fails to parse, the bytes are the client's
            return Undecodable(name, f"{type(error).__name__}: {error}")

    return parse


def decoded(request: Message | Undecodable) -> Message:
    """``request`` itself, unless the client's bytes did not parse.

    Raises:
        ConfigError: naming the message type and the parser's complaint.
    """
    if isinstance(request, Undecodable):
        raise ConfigError(
            f"the request is not a valid {request.message_type}: {truncated_repr(request.error)}"
        )
    return request


def check_sizes(request: pb.OpenSession, max_world_size: int) -> None:
    """Refuse an `OpenSession` holding a size past its bound, before anything uses it.

    Raises:
        ConfigError: naming the field, its size and the bound.
    """
    if request.world_size > max_world_size:
        raise ConfigError(
            f"world_size={request.world_size} is above this server's max_world_size="
            f"{max_world_size} (--max-world-size)"
        )
    for field in ("job", "selector"):
        _check_name(field, getattr(request, field))
    for field in ("columns", "score_columns"):
        names = getattr(request, field)
        if len(names) > MAX_COLUMNS:
            raise ConfigError(f"{field} has {len(names)} names; at most {MAX_COLUMNS}")
        for name in names:
            _check_name(f"a name in {field}", name)
    if len(request.selector_params_json) > MAX_PARAMS_LENGTH:
        raise ConfigError(
            f"selector_params_json has {len(request.selector_params_json)} characters; "
            f"at most {MAX_PARAMS_LENGTH}"
        )


def _check_name(what: str, name: str) -> None:
    if len(name) > MAX_NAME_LENGTH:
        raise ConfigError(
            f"{what} {truncated_repr(name)} has {len(name)} characters; at most {MAX_NAME_LENGTH}"
        )


def job_config(request: pb.OpenSession) -> JobConfig:
    """The JobConfig an `OpenSession` asks for.

    Raises:
        ConfigError: naming the bad value.
    """
    return JobConfig(
        dataset=request.dataset,
        selector=request.selector or "uniform",
        selector_params=selector_params(request.selector_params_json),
        batch_size=request.batch_size,
        world_size=request.world_size,  # 0 is refused, not taken for one rank
        seed=request.seed,
        last_batch=_enum("last_batch", request.last_batch, LAST_BATCH),  # type: ignore[arg-type]
        scoring=_enum("scoring", request.scoring, SCORING),  # type: ignore[arg-type]
    )


def stream_config(request: pb.OpenSession, max_in_flight: int) -> StreamConfig:
    """The StreamConfig an `OpenSession` asks for; ``max_in_flight`` is the server's
    default and cap.

    Raises:
        ConfigError: naming the bad value.
        PositionOutOfRangeError: the start position is beyond `MAX_POSITION`.
    """
    return StreamConfig(
        rank=request.rank,
        columns=tuple(request.columns),
        max_in_flight=min(request.max_in_flight or max_in_flight, max_in_flight),
        num_epochs=request.num_epochs,
        start=start_position(request),
        score_columns=tuple(request.score_columns),
    )


def start_position(request: pb.OpenSession) -> Position | None:
    """Where the session asks to start; None: the job's cursor for its rank."""
    if not request.HasField("start"):
        return None
    epoch, step = request.start.epoch, request.start.step
    if epoch > MAX_POSITION or step > MAX_POSITION:
        raise PositionOutOfRangeError(
            f"start epoch={epoch}, step={step}: both must be at most {MAX_POSITION}"
        )
    return Position(epoch, step)


def selector_params(text: str) -> dict[str, Any]:
    """The selector parameters of ``selector_params_json`` (a JSON object).

    Raises:
        ConfigError: not JSON (also: nested too deeply for the parser, or an integer
            of more digits than Python converts), not an object, or nested deeper
            than `MAX_PARAMS_DEPTH`.
    """
    try:
        params = json.loads(text or "{}")
    except RecursionError:
        raise ConfigError("selector_params_json is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, or an integer past the digit limit
        raise ConfigError(
            f"selector_params_json is not valid JSON: {truncated_repr(str(exc), limit=200)}"
        ) from None
    if not isinstance(params, dict):
        raise ConfigError(
            f"selector_params_json must be a JSON object, got {truncated_repr(params)}"
        )
    if _depth(params) > MAX_PARAMS_DEPTH:
        raise ConfigError(f"selector_params_json is nested deeper than {MAX_PARAMS_DEPTH} levels")
    return params


def _depth(value: Any) -> int:
    """How deeply JSON ``value`` nests (a scalar is 0, ``{}`` is 1); iterative, so that no
    input exhausts the stack."""
    deepest = 0
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    return deepest


def _enum(name: str, value: int, names: dict[int, str]) -> str:
    """The batcher's name of an enum number of the wire (unknown numbers are refused)."""
    try:
        return names[value]
    except KeyError:
        raise ConfigError(f"{name}={value} is not a known value; valid: {sorted(names)}") from None
