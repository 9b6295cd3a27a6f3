"""Structured log events, and a formatter that writes one JSON object per line.

A log call names an event and its fields, in either of two ways:

* ``log_event(LOG, logging.INFO, "metrics", port=9100)``: the record's message is
  the event itself (`Event`), whose text is the event as compact JSON, so any
  handler (pytest's caplog, a library user's plain ``basicConfig``) shows every
  field;
* ``LOG.info("a sentence for people", extra={"event": "metrics", "port": 9100})``,
  the standard library's way, where the message stays a sentence.

`JsonFormatter` writes each record as one JSON object with ``time``, ``level``
and ``logger``, then the event name and its fields as top-level keys (from
`Event`, or the record's ``extra`` attributes), and ``message`` for anything
that is not an `Event`: nothing is encoded twice.

A value a client or a file chose (a name, a parameter) appears in messages and
log lines as `batchcraft.errors.truncated_repr`: a megabyte-long dataset name must not make a
megabyte-long error (gRPC refuses status messages above its metadata limit).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from batchcraft._files import json_default

RESERVED_KEYS = frozenset({"time", "level", "logger", "event", "message", "exception"})
"""Keys the formatter writes itself; no event field may take one of them."""
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",  # set by Formatter.format
    "asctime",
}
"""What every record carries; any other attribute came from a log call's ``extra``."""


@dataclass(frozen=True)
class Event:
    """A log message that is an event name and its fields (a record's ``msg``)."""

    name: str
    fields: Mapping[str, Any]

    def __str__(self) -> str:
        return json.dumps({"event": self.name, **self.fields}, default=json_default)


def log_event(
    logger: logging.Logger,
    level: int,
    event: str,
    /,
    *,
    exc_info: Any = None,
    **fields: Any,
) -> None:
    """Log ``event`` with ``fields`` (JSON-serialisable values; others become strings).

    Args:
        logger: where to log.
        level: a `logging` level.
        event: the event's name, in snake_case (``checkpoint_failed``).
        exc_info: as for `logging.Logger.log` (True, or an exception, adds its traceback).
        **fields: the event's fields.

    Raises:
        ValueError: a field is named like a key the formatter writes (`RESERVED_KEYS`).
    """
    clashes = RESERVED_KEYS.intersection(fields)
    if clashes:
        raise ValueError(f"event fields {sorted(clashes)} clash with {sorted(RESERVED_KEYS)}")
    if logger.isEnabledFor(level):
        # stacklevel 2: the record names the caller's file and line, not this helper's
        logger.log(level, Event(event, fields), exc_info=exc_info, stacklevel=2)


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
        }
        fields: Mapping[str, Any]
        if isinstance(record.msg, Event) and not record.args:
            entry["event"] = record.msg.name
            fields = record.msg.fields
        else:
            entry["message"] = record.getMessage()
            fields = {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRIBUTES}
        for key, value in fields.items():
            entry.setdefault(key, value)  # the formatter's own keys win
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=json_default)


def configure_json_logging(level: str, stream: TextIO | None = None) -> None:
    """Send every log record to ``stream`` (stderr by default) as JSON lines, from ``level`` up.

    Replaces the root logger's handlers (the console script configures plain text first).
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
