"""The streaming server: its shared parts, the rooms' sessions, start-up and drain.

:class:`MonitorServer` composes the parts and owns the room sessions' lifecycle; the rest
lives beside it:

* :mod:`~monitor.server.web`: the routes (FastAPI), handshakes decided before the upgrade;
* :mod:`~monitor.server.transport`: uvicorn in this event loop, the TCP-level bounds;
* :mod:`~monitor.server.resources`: loading the models and the archive, archive retries;
* :mod:`~monitor.server.rooms`: which ``start`` resumes, replaces, opens or is refused;
* :mod:`~monitor.server.decisions`, :mod:`~monitor.server.console_routes`: moderators.

It holds only shared resources; per-room state lives in
:class:`~monitor.server.session.RoomSession`, per-socket state in
:class:`~monitor.server.connection.RoomConnection`::

    server = MonitorServer(settings)
    await server.start()          # listening; /healthz is 503 until models are loaded
    await server.loaded.wait()    # models loaded and warmed: /healthz is 200 (or load_error is set)
    server.port                   # the port bound (settings.port may be 0)
    ...
    await server.drain()          # SIGTERM: flush every room, send and archive everything
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

from monitor.config import Settings
from monitor.errors import ProtocolError
from monitor.server.connection import RoomConnection
from monitor.server.console_routes import ConsoleRoutes
from monitor.server.console_sessions import ConsoleSessions
from monitor.server.decisions import DecisionDesk
from monitor.server.hub import AlertHub
from monitor.server.limits import ConnectionGate
from monitor.server.logs import redact_server_logs
from monitor.server.metrics import ServerMetrics
from monitor.server.protocol import ErrorCode, StartFrame, fatal
from monitor.server.resources import ResourceLoader
from monitor.server.rooms import RoomRegistry
from monitor.server.scheduler import FairScheduler
from monitor.server.session import Resources, RoomSession
from monitor.server.transport import EmbeddedUvicorn, uvicorn_config
from monitor.server.web import build_app

log = logging.getLogger(__name__)

SOCKETS_CLOSE_TIMEOUT_S = 10.0
"""After a drain has ended every room and subscriber, how long their sockets get to close."""


class MonitorServer:
    """One ``monitor serve`` process's server; see the module docstring."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = ServerMetrics()
        self.hub = AlertHub(
            self.metrics,
            replay_buffer_alerts=settings.replay_buffer_alerts,
            subscriber_queue_alerts=settings.subscriber_queue_alerts,
        )
        self.scheduler = FairScheduler(settings.server_workers)
        self.rooms = RoomRegistry(
            max_sessions_per_token=settings.max_sessions_per_token,
            new_sessions_per_token_per_s=settings.new_sessions_per_token_per_s,
        )
        self.gate = ConnectionGate(settings.max_open_sockets, settings.max_pending_handshakes)
        self.loader = ResourceLoader(settings, hub=self.hub, metrics=self.metrics, scheduler=self.scheduler)
        self.sessions = ConsoleSessions(ttl_s=settings.console_session_ttl_s, secure=settings.console_cookie_secure)
        self.console = ConsoleRoutes(settings.tokens, self.sessions, evidence=self._evidence, rooms=self.room_list)
        self.desk = DecisionDesk(settings, self.metrics, self.hub, evidence=self._evidence)
        self.app = build_app(self)
        self._finishing: set[asyncio.Task[None]] = set()  # sessions finishing (stopped, replaced, expired)
        self._draining = False
        self._listener: socket.socket | None = None
        self._uvicorn: EmbeddedUvicorn | None = None
        self._serving: asyncio.Task[None] | None = None
        self._open_sockets = 0
        self._sockets_closed = asyncio.Event()
        self._sockets_closed.set()

    # -- start-up -----------------------------------------------------------------------
    async def start(self) -> None:
        """Listen on ``settings.host``/``settings.port`` at once and load the models in the background."""
        s = self.settings
        family = socket.AF_INET6 if ":" in s.host else socket.AF_INET
        self._listener = socket.create_server((s.host, s.port), family=family, backlog=2048)
        redact_server_logs()
        self._uvicorn = EmbeddedUvicorn(uvicorn_config(self.app, s, self.gate, self.metrics))
        self._serving = asyncio.create_task(self._uvicorn.serve(sockets=[self._listener]), name="uvicorn")
        self._serving.add_done_callback(_report_serving_end)
        self.loader.start()

    @property
    def port(self) -> int:
        """The TCP port actually bound (useful with ``port=0``)."""
        if self._listener is None:
            raise RuntimeError("MonitorServer.start() first")
        return int(self._listener.getsockname()[1])

    @property
    def loaded(self) -> asyncio.Event:
        """Set when loading ended, successfully (:attr:`resources`) or not (:attr:`load_error`)."""
        return self.loader.loaded

    @property
    def load_error(self) -> BaseException | None:
        return self.loader.load_error

    @property
    def resources(self) -> Resources | None:
        return self.loader.resources

    @property
    def ready(self) -> bool:
        """Models loaded and not draining: websocket handshakes are accepted."""
        return self.resources is not None and not self._draining

    @property
    def draining(self) -> bool:
        return self._draining

    def _evidence(self) -> Any:
        return self.resources.evidence if self.resources is not None else None

    @contextlib.asynccontextmanager
    async def socket_open(self) -> AsyncIterator[None]:
        """Count an accepted websocket while its handler runs (a drain waits for them to close)."""
        self._open_sockets += 1
        self._sockets_closed.clear()
        try:
            yield
        finally:
            self._open_sockets -= 1
            if self._open_sockets == 0:
                self._sockets_closed.set()

    # -- rooms ----------------------------------------------------------------------------
    def room_list(self) -> list[dict[str, Any]]:
        """The open room sessions (connected or in resume grace), for ``/v1/rooms``."""
        return [_room_info(session) for session in self._sessions()]

    def _sessions(self) -> list[RoomSession]:
        return [session for session in self.rooms if isinstance(session, RoomSession)]

    def open_session(self, start: StartFrame, connection: RoomConnection) -> RoomSession:
        """The session ``start`` continues or begins (:class:`~monitor.server.rooms.RoomRegistry`)."""
        resources = self.resources
        if self._draining or resources is None:
            raise fatal(ErrorCode.SHUTTING_DOWN, "server is shutting down; reconnect to another instance")
        try:
            admission = self.rooms.admit(start, connection.grant.client_key)
        except ProtocolError as exc:
            if exc.code == ErrorCode.TOO_MANY_SESSIONS:
                self.metrics.limit_refusals.labels(limit="sessions_per_token").inc()
            raise
        if admission.resume is not None:
            existing = admission.resume
            assert isinstance(existing, RoomSession)
            if existing.connection is not None:
                existing.connection.supersede()
            existing.attach(connection)
            connection.resumed = True
            return existing
        if admission.replaces is not None:
            assert isinstance(admission.replaces, RoomSession)
            self._track_finish(admission.replaces.finish_soon("replaced by a new stream"))
        session = RoomSession(
            resources,
            room_id=start.room_id,
            anchor_id=start.anchor_id,
            sample_rate=start.sample_rate,
            context=start.context,
            base_seq=start.seq or 0,
            opened_by=connection.grant.client_key,
        )
        session.on_finished = self._session_finished
        session.on_finishing = self._track_finish
        session.attach(connection)
        self.rooms.add(session)
        self.metrics.open_rooms.set(len(self.rooms))
        self.hub.publish_event({"type": "room", "event": "open", **_room_info(session)})
        return session

    def _track_finish(self, task: asyncio.Task[None]) -> None:
        """Keep a finishing session's task until it is done, so drain can wait for it."""
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)

    def _session_finished(self, session: RoomSession) -> None:
        self.rooms.remove(session)
        self.metrics.open_rooms.set(len(self.rooms))
        self.hub.publish_event({"type": "room", "event": "closed", **_room_info(session)})

    # -- shutdown -----------------------------------------------------------------------
    async def drain(self) -> None:
        """Stop accepting, flush every open room (alerts sent, evidence and transcripts archived),
        end every subscriber after its last alert, then release the models and the archive."""
        if self._draining:
            return
        self._draining = True
        timeout = self.settings.drain_timeout_s
        for listening in getattr(self._uvicorn, "servers", []):
            listening.close()  # no new connections; the open ones carry on
        self.loader.stop_loading()
        rooms = self._sessions()
        log.info("draining %d room(s), %d finishing", len(rooms), len(self._finishing))
        # every room is flushed even if one fails; replaced and expiring sessions are waited for too
        work = [room.finish("shutdown") for room in rooms] + list(self._finishing)
        try:
            results = await asyncio.wait_for(asyncio.gather(*work, return_exceptions=True), timeout)
        except TimeoutError:
            log.error("drain: rooms still busy after %.0f s; exiting with work undone", timeout)
        else:
            for result in results:
                if isinstance(result, BaseException):
                    log.error("drain: a room failed to finish: %r", result, exc_info=result)
        self.hub.end_all()
        try:
            await asyncio.wait_for(self._sockets_closed.wait(), SOCKETS_CLOSE_TIMEOUT_S)
        except TimeoutError:
            log.warning("drain: %d socket(s) still open after %.0f s; closing them", self._open_sockets,
                        SOCKETS_CLOSE_TIMEOUT_S)
        if self._uvicorn is not None and self._serving is not None:
            self._uvicorn.should_exit = True  # closes what is left (idle keep-alive connections too)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._serving), 2 * SOCKETS_CLOSE_TIMEOUT_S)
        await asyncio.get_running_loop().run_in_executor(None, self.scheduler.shutdown)
        self.loader.close()
        log.info("drained")


def _report_serving_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the HTTP server stopped: %r", task.exception(), exc_info=task.exception())


def _room_info(session: RoomSession) -> dict[str, Any]:
    return {
        "room_id": session.room_id,
        "anchor_id": session.anchor_id,
        "session_id": session.session_id,
        "started_at": session.started_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "connected": session.connection is not None,
        "stream_time": round(session.stream_time_s, 3),
        "alerts": session.alerts_sent,
    }
