"""Logging that never writes a credential: the handshake and access logs with secrets redacted.

At DEBUG level the websockets protocol core (which uvicorn's websocket protocol runs)
logs every handshake header, which would put bearer tokens (``Authorization``) and
console session ids (``Cookie``, ``Set-Cookie``) in the log. :func:`redacting_logger`
returns the logger the server hands to that core, with a filter that replaces those
header values, and the value of any ``access_token=`` a misbehaving client still puts
in a request URL (refused with 401, but the request line is logged). uvicorn's own
loggers (``uvicorn.error``: websocket accept lines; ``uvicorn.access``: request lines,
both with the query string) get the same filter from :func:`redact_server_logs`.
"""

from __future__ import annotations

import logging
import re

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
