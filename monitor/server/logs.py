"""Logging that never writes a credential: the handshake and access logs with secrets redacted.

At DEBUG level the websockets protocol core (which uvicorn's websocket protocol runs)
logs every handshake header, which would put bearer tokens (``Authorization``) and
console session ids (``Cookie``, ``Set-Cookie``) in the log. :func:`redacting_logger`
returns the logger the server hands to that core, with a filter that replaces those
header values, and the value of any ``access_token=`` a misbehaving client still puts
in a request URL (refused with 401, but the request line is logged). uvicorn's own
loggers (``uvicorn.error``: websocket accept lines; ``uvicorn.access``: request lines,
both with the query string) get the same filter from :func:`redact_server_logs`.

With ``MONITOR_LOG_FORMAT=json`` (:func:`use_log_format`) every record is one JSON object a
line: ``time`` (UTC ISO-8601, milliseconds), ``level``, ``logger``, ``message``, and
``room_id``/``session_id`` when the record is about a room: from ``extra={"room_id": ...}``
on the call, else from the context bound by :func:`bound_room` (the ingest connection's
and a pulled room's tasks bind it, so what runs on their behalf is tagged), plus
``exception`` (the traceback) when there is one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

URL_SECRET = re.compile(r"((?:access_token|token|session)=)[^&\s]*", re.IGNORECASE)

SECRET_HEADERS = frozenset({"authorization", "cookie", "set-cookie"})
REDACTED = "[redacted]"
LOGGER_NAME = "monitor.server.websockets"
SERVER_LOGGERS = ("uvicorn.error", "uvicorn.access")
"""uvicorn's loggers, which log request paths with their query strings."""


class RedactSecretHeaders(logging.Filter):
    """Rewrites websockets' header records (``"< %s: %s"``) of secret headers, and secrets in URLs."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if (
            isinstance(args, tuple)
            and len(args) == 2
            and isinstance(args[0], str)
            and args[0].lower() in SECRET_HEADERS
        ):
            record.args = (args[0], REDACTED)
        elif isinstance(args, tuple):  # e.g. the request line "< %s %s %s"
            record.args = tuple(
                URL_SECRET.sub(rf"\1{REDACTED}", arg) if isinstance(arg, str) and "=" in arg else arg
                for arg in args
            )
        return True


def _with_filter(name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    if not any(isinstance(f, RedactSecretHeaders) for f in logger.filters):
        logger.addFilter(RedactSecretHeaders())
    return logger


def redacting_logger() -> logging.Logger:
    """The logger to give the websockets protocol core (``ServerProtocol(logger=...)``); filter installed once."""
    return _with_filter(LOGGER_NAME)


def redact_server_logs() -> None:
    """Install the filter on uvicorn's loggers too (idempotent)."""
    for name in SERVER_LOGGERS:
        _with_filter(name)


ROOM_FIELDS = ("room_id", "session_id")
"""Fields a JSON log record carries when it is about a room."""

_room: ContextVar[dict[str, str] | None] = ContextVar("monitor_log_room", default=None)


def bind_room(room_id: str, session_id: str | None = None) -> None:
    """Tag the log records of this task (and of tasks it creates from now on) with the room."""
    _room.set({"room_id": room_id, **({"session_id": session_id} if session_id else {})})


@contextlib.contextmanager
def bound_room(room_id: str, session_id: str | None = None) -> Iterator[None]:
    """:func:`bind_room` for the ``with`` block only (tasks created inside keep the tag)."""
    token = _room.set({"room_id": room_id, **({"session_id": session_id} if session_id else {})})
    try:
        yield
    finally:
        _room.reset(token)


class JsonLogFormatter(logging.Formatter):
    """One JSON object per record (module docstring); never raises on odd arguments."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace(
                "+00:00", "Z"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        bound = _room.get() or {}
        for name in ROOM_FIELDS:
            value = getattr(record, name, None) or bound.get(name)
            if value:
                entry[name] = str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False, default=str)


def use_log_format(log_format: Literal["text", "json"], logger: logging.Logger | None = None) -> None:
    """``json``: every handler of ``logger`` (default: the root logger) writes :class:`JsonLogFormatter`
    lines; with no handler yet, one on stderr is added. ``text`` leaves the handlers as they are."""
    if log_format != "json":
        return
    target = logger or logging.getLogger()
    if not target.handlers:
        target.addHandler(logging.StreamHandler())
    for handler in target.handlers:
        if not isinstance(handler.formatter, JsonLogFormatter):
            handler.setFormatter(JsonLogFormatter())
