"""Server logs: one JSON object per line, with each event's fields as top-level keys."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from batchcraft.logs import JsonFormatter, log_event
from batchcraft.service import BatchClient

pytestmark = pytest.mark.grpc


def test_every_line_the_server_logs_is_one_json_object(  # type: ignore[no-untyped-def]
    curated_dir: Path, tmp_path: Path, server_process
) -> None:
    state = tmp_path / "state"
    server = server_process(
        str(curated_dir), "--name", "news", "--checkpoint-dir", str(state), "--metrics-port", "0"
    )
    with BatchClient(server.address, "news", batch_size=10, columns=["id"], job="logged") as client:
        assert sum(1 for _ in client) == 11
    server.stop()
    lines = server.process.stderr.read().splitlines()
    entries = [json.loads(line) for line in lines]  # fails on any line that is not JSON
    assert all(isinstance(entry, dict) for entry in entries)
    assert all({"time", "level", "logger"} <= set(entry) for entry in entries)
    events = {entry["event"]: entry for entry in entries if "event" in entry}
    assert isinstance(events["metrics"]["port"], int) and events["metrics"]["port"] > 0
    assert events["provenance"]["directory"] == str(state / "provenance")
    opened = events["session_opened"]
    assert (opened["job"], opened["rank"], opened["logger"]) == ("logged", 0, "batchcraft.service")
    assert not any("message" in event for event in events.values())  # nothing encoded twice


def json_lines(emit) -> list[dict]:  # type: ignore[no-untyped-def]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("batchcraft.test_logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        emit(logger)
    finally:
        logger.removeHandler(handler)
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_events_keep_tracebacks_extra_fields_are_top_level_and_messages_stay() -> None:
    def emit(logger: logging.Logger) -> None:
        try:
            raise OSError("disk full")
        except OSError as error:
            log_event(logger, logging.WARNING, "save_failed", exc_info=error, path=Path("/x"))
        logger.info("plain %d", 7)
        logger.info("a sentence", extra={"event": "fallback", "job": "j"})

    event, plain, extra = json_lines(emit)
    assert (event["event"], event["path"], event["level"]) == ("save_failed", "/x", "WARNING")
    assert "OSError: disk full" in event["exception"] and "message" not in event
    assert plain["message"] == "plain 7" and "event" not in plain
    assert (extra["event"], extra["job"], extra["message"]) == ("fallback", "j", "a sentence")


def test_an_event_field_may_not_take_a_key_of_the_formatter() -> None:
    with pytest.raises(ValueError, match="level"):
        log_event(logging.getLogger("batchcraft.test_logs"), logging.INFO, "x", level=3)
