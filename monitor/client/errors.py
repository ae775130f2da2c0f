"""Errors an ingest stream raises (all are :class:`~monitor.errors.MonitorError`)::

    ClientError            the stream could not go on; the message says why, in one line
    ├── ServerUnreachable  no TCP/websocket connection to the server (first connection)
    ├── HandshakeRefused   the server answered the upgrade with an HTTP error (``status``: 401, 403, ...)
    ├── StreamRefused      the server ended the stream with a fatal error frame (``code``)
    └── ResumeFailed       the connection dropped and no resume succeeded within ``resume_timeout_s``

An unreadable file or URL raises :class:`~monitor.errors.AudioDecodeError` instead.
"""

from __future__ import annotations

from monitor.errors import MonitorError


class ClientError(MonitorError):
    """An ingest stream could not go on."""


class ServerUnreachable(ClientError):
    """The first connection to the server failed (refused, unresolvable, timed out)."""


class HandshakeRefused(ClientError):
    """The server refused the websocket upgrade with HTTP ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class StreamRefused(ClientError):
    """The server sent a fatal ``error`` frame ``code`` that a resume cannot get past."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class ResumeFailed(ClientError):
    """The connection dropped and no resume succeeded in time."""
