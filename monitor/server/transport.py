"""uvicorn, embedded in the server's event loop, with the hostile-client bounds at the TCP level.

The web application (:mod:`monitor.server.web`) never sees a connection that a bound
refused. Per TCP connection, :class:`GatedH11Protocol` (uvicorn's h11 protocol):

* asks the :class:`~monitor.server.limits.ConnectionGate` first; over ``max_open_sockets``
  or ``max_pending_handshakes`` it writes a raw ``HTTP/1.1 503`` with ``Retry-After: 5``
  and closes, before reading a byte of the request (counted in
  ``monitor_limit_refusals_total{limit}``);
* drops the connection when the request's headers are not complete within
  ``handshake_timeout_s`` (uvicorn has no header timeout of its own); on a keep-alive
  connection each further request gets the same time after the previous response;
* hands its place in the gate to :class:`GatedWebSocketProtocol` on a websocket upgrade,
  which gives it back when the socket ends.

:class:`GatedWebSocketProtocol` is uvicorn's ``websockets-sansio`` protocol (the
websockets library's I/O-free core) with the handshake's DEBUG header lines going to the
redacting logger, and an ``asyncio.Event`` in the ASGI scope that is set when the TCP
connection is lost (:data:`~monitor.server.sockets.CONNECTION_LOST_EXTENSION`), so a
room that has stopped reading (back-pressure) still notices its socket ended.

:class:`EmbeddedUvicorn` runs in the caller's loop and leaves signals alone: ``monitor
serve`` installs its own SIGTERM drain.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.server import ServerProtocol

from monitor.config import Settings
from monitor.server.limits import ConnectionGate
from monitor.server.logs import redacting_logger
from monitor.server.metrics import ServerMetrics
from monitor.server.sockets import CONNECTION_LOST_EXTENSION

log = logging.getLogger(__name__)

RETRY_AFTER_S = 5
"""``Retry-After`` of the raw 503 sent to a connection refused by a bound."""

CLOSE_TIMEOUT_S = 5.0
"""How long a closing websocket waits for the peer's close frame before dropping the TCP connection."""


class GateTicket:
    """One admitted connection's place in the gate: a pending handshake until its request arrives."""

    def __init__(self, gate: ConnectionGate) -> None:
        self._gate = gate
        self._pending = True
        self._open = True

    def handshake_done(self) -> None:
        if self._pending and self._open:
            self._pending = False
            self._gate.handshake_done()

    def release(self) -> None:
        if self._open:
            self._open = False
            self._gate.closed(handshake_pending=self._pending)
            self._pending = False


def _busy_response(limit: str) -> bytes:
    body = f"server busy: too many {limit.replace('_', ' ')}; retry later\n".encode()
    return (
        f"HTTP/1.1 503 Service Unavailable\r\nRetry-After: {RETRY_AFTER_S}\r\nConnection: close\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


class GatedH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol behind the connection gate and the header timeout (module docstring).

    ``gate``, ``metrics`` and ``handshake_timeout_s`` are bound per server by :func:`uvicorn_config`.
    """

    gate: ConnectionGate
    metrics: ServerMetrics
    handshake_timeout_s: float

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._ticket: GateTicket | None = None
        self._header_timer: asyncio.TimerHandle | None = None
        self._request_scope: Any = None
        refused = self.gate.admit()
        self._refused = refused is not None
        if refused is not None:
            self.metrics.limit_refusals.labels(limit=refused).inc()
            transport.write(_busy_response(refused))
            transport.close()
            return
        self._ticket = GateTicket(self.gate)
        self._arm_header_timer()

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.handshake_timeout_s, self._headers_timed_out)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_timed_out(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            log.info("connection dropped: request headers not complete within %.3g s", self.handshake_timeout_s)
            self.transport.close()

    def _note_request(self) -> None:
        """Called after parsing: a new request whose headers are complete ends the header timer."""
        if self.scope is not None and self.scope is not self._request_scope:
            self._request_scope = self.scope
            self._cancel_header_timer()
            if self._ticket is not None:
                self._ticket.handshake_done()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # answered 503 already; the request is never read
        super().data_received(data)
        self._note_request()

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._note_request()
        super().handle_websocket_upgrade(event)
        protocol = self.transport.get_protocol()
        if isinstance(protocol, GatedWebSocketProtocol):
            protocol.adopt(self._ticket)
            self._ticket = None

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._note_request()  # a pipelined request may have been parsed just now
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm_header_timer()  # keep-alive: the next request gets the same time

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        if self._ticket is not None:
            self._ticket.release()
            self._ticket = None
        super().connection_lost(exc)


class GatedWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's ``websockets-sansio`` protocol: redacted handshake logging, the connection-lost
    event in the scope, and the gate place of the HTTP connection it upgraded (module docstring)."""

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        # the same protocol core, logging through the redacting logger (never an Authorization or Cookie)
        self.conn = ServerProtocol(extensions=[], max_size=config.ws_max_size, logger=redacting_logger())
        self.close_timeout = CLOSE_TIMEOUT_S
        self.connection_lost_event = asyncio.Event()
        self._ticket: GateTicket | None = None

    def adopt(self, ticket: GateTicket | None) -> None:
        """Take over the upgraded HTTP connection's place in the gate (released when this socket ends)."""
        self._ticket = ticket

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:  # the handshake was valid: the application task is about to start
            scope["extensions"][CONNECTION_LOST_EXTENSION] = self.connection_lost_event

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.http.response.body" and not message.get("more_body", False):
            self.handshake_complete = True  # refused with an HTTP answer: the handshake is over, not failed

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.connection_lost_event.set()
        if self._ticket is not None:
            self._ticket.release()
            self._ticket = None


class EmbeddedUvicorn(uvicorn.Server):
    """A uvicorn server run as a task of the caller's event loop, without signal handlers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # monitor serve installs its own SIGTERM/SIGINT drain (commands.py)


def uvicorn_config(app: Any, settings: Settings, gate: ConnectionGate, metrics: ServerMetrics) -> uvicorn.Config:
    """uvicorn's configuration for ``app`` with this server's bounds and websocket settings."""
    http = type(
        "BoundGatedH11Protocol",
        (GatedH11Protocol,),
        {"gate": gate, "metrics": metrics, "handshake_timeout_s": settings.handshake_timeout_s},
    )
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=http,
        ws=GatedWebSocketProtocol,
        # frames up to twice the limit are read and answered with frame_too_large;
        # beyond that the websocket layer closes with 1009 itself
        ws_max_size=max(2 * settings.max_frame_bytes, 65536),
        ws_ping_interval=settings.ping_interval_s,
        ws_ping_timeout=settings.ping_timeout_s,
        ws_per_message_deflate=False,  # PCM does not deflate; save the CPU for the models
        lifespan="off",
        log_config=None,  # the process's logging stays as monitor configured it
        proxy_headers=False,  # X-Forwarded-* is not trusted (a proxy in front terminates TLS only)
        server_header=False,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=10,
    )
