"""The websocket as the connection handlers see it: receive, send, close, notice the end.

:class:`MessageSocket` is the narrow interface :mod:`monitor.server.connection` is written
against; :class:`AsgiSocket` implements it over Starlette's ``WebSocket`` (the ASGI
connection uvicorn gives a FastAPI route), so the handlers never see the framework::

    socket = AsgiSocket(websocket)
    message = await socket.recv()            # str (text frame) or bytes (binary frame)
    await socket.send(text)
    await socket.close(1008, "bad_start: ...")
    await socket.wait_closed()               # the TCP connection is gone, whoever ended it

Every end of the connection (the peer's close frame, a TCP reset, a keepalive timeout,
the server's own close) surfaces as :class:`SocketClosed` from ``recv``/``send``.

Back-pressure: uvicorn's websocket protocol (``websockets-sansio``) stops reading the
TCP socket after each message it hands over until the application has taken it
(``receive``), so a handler that does not call :meth:`recv` (a room waiting for
transcription capacity) stops the client's data in the kernel buffers and then at the
client: nothing is buffered in the server beyond the bytes of one read.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Protocol

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

CONNECTION_LOST_EXTENSION = "monitor.connection_lost"
"""ASGI scope extension (set by :class:`~monitor.server.transport.GatedWebSocketProtocol`):
an ``asyncio.Event`` set when the TCP connection is lost, even while nobody reads it."""


class SocketClosed(Exception):
    """The websocket is closed (by the peer, the network, a timeout or the server)."""

    def __init__(self, code: int | None = None, reason: str = "") -> None:
        super().__init__(f"websocket closed ({code}{': ' + reason if reason else ''})")
        self.code = code
        self.reason = reason


class MessageSocket(Protocol):
    """What a connection handler needs from its websocket (see the module docstring)."""

    async def recv(self) -> str | bytes: ...

    async def send(self, text: str) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...

    async def wait_closed(self) -> None: ...

    def __aiter__(self) -> AsyncIterator[str | bytes]: ...


class AsgiSocket:
    """:class:`MessageSocket` over an accepted Starlette ``WebSocket``."""

    def __init__(self, websocket: WebSocket) -> None:
        self._websocket = websocket
        lost = websocket.scope.get("extensions", {}).get(CONNECTION_LOST_EXTENSION)
        # without the extension (another ASGI server) the end is noticed when reading or writing
        self._lost: asyncio.Event = lost if isinstance(lost, asyncio.Event) else asyncio.Event()
        self._closed: SocketClosed | None = None

    async def recv(self) -> str | bytes:
        """The next message; SocketClosed once the connection has ended."""
        if self._closed is not None:
            raise self._closed
        message = await self._websocket.receive()
        if message["type"] == "websocket.disconnect":
            self._closed = SocketClosed(message.get("code"), message.get("reason") or "")
            self._lost.set()
            raise self._closed
        text = message.get("text")
        if text is not None:
            return str(text)
        return bytes(message.get("bytes") or b"")

    async def send(self, text: str) -> None:
        """Send one text frame; SocketClosed if the connection has ended."""
        if self._closed is not None or self._websocket.application_state != WebSocketState.CONNECTED:
            raise self._closed or SocketClosed()
        try:
            await self._websocket.send_text(text)
        except (WebSocketDisconnect, OSError, RuntimeError) as exc:
            # RuntimeError: Starlette's "after sending websocket.close" when the socket is closing
            self._closed = SocketClosed(getattr(exc, "code", None))
            self._lost.set()
            raise self._closed from exc

    async def close(self, code: int, reason: str) -> None:
        """Start the closing handshake with ``code`` and ``reason`` (at most 123 bytes); idempotent."""
        if self._websocket.application_state != WebSocketState.CONNECTED:
            return
        with contextlib.suppress(WebSocketDisconnect, OSError, RuntimeError):  # already gone: nothing to close
            await self._websocket.close(code, reason)
        self._closed = self._closed or SocketClosed(code, reason)

    async def wait_closed(self) -> None:
        """Return once the TCP connection is gone (see :data:`CONNECTION_LOST_EXTENSION`)."""
        await self._lost.wait()

    async def __aiter__(self) -> AsyncIterator[str | bytes]:
        """Messages until the connection ends (the end itself is not an error here)."""
        while True:
            try:
                yield await self.recv()
            except SocketClosed:
                return
