"""Logging that never writes a credential: the websockets library's logger with secrets redacted.

At DEBUG level the websockets library logs every request and response header, which
would put bearer tokens (``Authorization``) and console session ids (``Cookie``,
``Set-Cookie``) in the log. :func:`redacting_logger` returns the logger the server
hands to websockets, with a filter that replaces those header values.
"""

from __future__ import annotations

import logging

SECRET_HEADERS = frozenset({"authorization", "cookie", "set-cookie"})
REDACTED = "[redacted]"
LOGGER_NAME = "monitor.server.websockets"


class RedactSecretHeaders(logging.Filter):
    """Rewrites websockets' ``"< %s: %s"`` / ``"> %s: %s"`` header records of secret headers."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if (
            isinstance(args, tuple)
            and len(args) == 2
            and isinstance(args[0], str)
            and args[0].lower() in SECRET_HEADERS
        ):
            record.args = (args[0], REDACTED)
        return True


def redacting_logger() -> logging.Logger:
    """The logger to pass to ``websockets.serve(logger=...)`` (filter installed once)."""
    logger = logging.getLogger(LOGGER_NAME)
    if not any(isinstance(f, RedactSecretHeaders) for f in logger.filters):
        logger.addFilter(RedactSecretHeaders())
    return logger
