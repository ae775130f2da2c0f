"""Logging that never writes a credential: the websockets library's logger with secrets redacted.

At DEBUG level the websockets library logs every request and response header, which
would put bearer tokens (``Authorization``) and console session ids (``Cookie``,
``Set-Cookie``) in the log. :func:`redacting_logger` returns the logger the server
hands to websockets, with a filter that replaces those header values, and the value
of any ``access_token=`` a misbehaving client still puts in a request URL (refused
with 401, but the request line is logged at DEBUG).
"""

from __future__ import annotations

import logging
import re

URL_SECRET = re.compile(r"((?:access_token|token|session)=)[^&\s]*", re.IGNORECASE)

SECRET_HEADERS = frozenset({"authorization", "cookie", "set-cookie"})
REDACTED = "[redacted]"
LOGGER_NAME = "monitor.server.websockets"


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


def redacting_logger() -> logging.Logger:
    """The logger to pass to ``websockets.serve(logger=...)`` (filter installed once)."""
    logger = logging.getLogger(LOGGER_NAME)
    if not any(isinstance(f, RedactSecretHeaders) for f in logger.filters):
        logger.addFilter(RedactSecretHeaders())
    return logger
