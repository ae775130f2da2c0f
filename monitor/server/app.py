"""The streaming server: its shared parts, the rooms' sessions, start-up and drain.

:class:`MonitorServer` composes the parts and owns the room sessions' lifecycle; the rest
lives beside it:

* :mod:`~monitor.server.web`: the routes (FastAPI), handshakes decided before the upgrade;
* :mod:`~monitor.server.transport`: uvicorn in this event loop, the TCP-level bounds;
* :mod:`~monitor.server.resources`: loading the models and the archive, archive retries;
* :mod:`~monitor.server.rooms`: which ``start`` resumes, replaces, opens or is refused;
* :mod:`~monitor.server.decisions`, :mod:`~monitor.server.console_routes`: moderators;
* :mod:`~monitor.server.pull`: rooms whose stream the server pulls from a URL.

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
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

from monitor.asr.audio import SAMPLE_RATE
from monitor.config import Settings
from monitor.errors import ProtocolError
from monitor.server.connection import RoomConnection
from monitor.server.console_routes import ConsoleRoutes
from monitor.server.console_sessions import ConsoleSessions
from monitor.server.decisions import DecisionDesk
from monitor.server.hub import AlertHub
from monitor.server.inspections import InspectionDesk
from monitor.server.limits import ConnectionGate
from monitor.server.logs import bind_room, redact_server_logs, use_log_format
from monitor.server.metrics import ServerMetrics
from monitor.server.protocol import ErrorCode, StartFrame, fatal
from monitor.server.pull import PulledRoom, PullRooms
from monitor.server.reports import ReportDesk
from monitor.server.resources import ResourceLoader
from monitor.server.rooms import RoomRegistry
from monitor.server.scheduler import FairScheduler
from monitor.server.session import Resources, RoomSession, RoomSocket
from monitor.server.timeline import LiveAlerts
from monitor.server.transport import EmbeddedUvicorn, uvicorn_config
from monitor.server.web import build_app
from monitor.server.webhooks import WebhookDispatcher

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
        # in cluster mode the threads mostly wait on workers and the archiver: many are cheap
        self.scheduler = FairScheduler(settings.gateway_threads if settings.broker_url else settings.server_workers)
        self.rooms = RoomRegistry(
            max_sessions_per_token=settings.max_sessions_per_token,
            new_sessions_per_token_per_s=settings.new_sessions_per_token_per_s,
        )
        self.gate = ConnectionGate(settings.max_open_sockets, settings.max_pending_handshakes)
        self.loader = ResourceLoader(settings, hub=self.hub, metrics=self.metrics, scheduler=self.scheduler)
        self.sessions = ConsoleSessions(ttl_s=settings.console_session_ttl_s, secure=settings.console_cookie_secure)
        self.console = ConsoleRoutes(settings.tokens, self.sessions, evidence=self._evidence, rooms=self.room_list)
        self.desk = DecisionDesk(settings, self.metrics, self.hub, evidence=self._evidence)
        self.live_alerts = LiveAlerts()  # alerts of the live sessions, for their timelines
        self.reports = ReportDesk(self)
        self.inspections = InspectionDesk(self)
        # alerts, decisions and viewer reports to the platform, from a queue on disk (MONITOR_WEBHOOKS)
        self.webhooks = WebhookDispatcher.from_settings(settings, self.metrics.registry) if settings.webhooks else None
        if self.webhooks is not None:
            self.hub.observe(self.webhooks.observe)
        self.pulls = PullRooms(settings, self.metrics, self.hub, self.open_pulled_session)
        self.metrics.build.versions = self._versions
        self.app = build_app(self)
        self._finishing: set[asyncio.Task[None]] = set()  # sessions finishing (stopped, replaced, expired)
        self._draining = False
        self._listener: socket.socket | None = None
        self._uvicorn: EmbeddedUvicorn | None = None
        self._serving: asyncio.Task[None] | None = None
        self._open_sockets = 0
        self._sockets_closed = asyncio.Event()
        self._sockets_closed.set()
        self.gateway: Any = None  # cluster mode (MONITOR_BROKER_URL): monitor.cluster.gateway.Gateway

    # -- start-up -----------------------------------------------------------------------
    async def start(self) -> None:
        """Listen on ``settings.host``/``settings.port`` at once and load the models in the background."""
        s = self.settings
        if s.broker_url:
            await self._join_cluster(s.broker_url)
        family = socket.AF_INET6 if ":" in s.host else socket.AF_INET
        self._listener = socket.create_server((s.host, s.port), family=family, backlog=2048)
        redact_server_logs()
        use_log_format(s.log_format)
        self._uvicorn = EmbeddedUvicorn(uvicorn_config(self.app, s, self.gate, self.metrics))
        self._serving = asyncio.create_task(self._uvicorn.serve(sockets=[self._listener]), name="uvicorn")
        self._serving.add_done_callback(_report_serving_end)
        self.loader.start()
        if self.webhooks is not None:
            try:
                await self.webhooks.start()
            except (OSError, sqlite3.Error) as exc:  # reminders matter more than webhooks: serve on
                log.error("webhooks off: their queue %s cannot be opened: %s", self.webhooks.path, exc)
                self.webhooks = None

    async def _join_cluster(self, url: str) -> None:
        from monitor.asr.transcriber import asr_model_version
        from monitor.cluster.broker import Broker
        from monitor.cluster.gateway import Gateway, default_gateway_id
        from monitor.cluster.metrics import ClusterMetrics

        gateway_id = self.settings.gateway_id or default_gateway_id()
        broker = await Broker.connect(url, name=gateway_id)
        self.gateway = Gateway(
            broker,
            gateway_id=gateway_id,
            model_version=asr_model_version(self.settings),
            metrics=ClusterMetrics(role="gateway", registry=self.metrics.registry),
        )
        await self.gateway.start(self.hub)
        self.gateway.leases.on_lost = self._room_lost
        self.loader.gateway = self.gateway
        log.info("gateway %s joined the cluster at %s", gateway_id, url)

    def _room_lost(self, room_id: str) -> None:
        """Another gateway took the room over (this one was cut off): stop it here, archive nothing."""
        for session in self._sessions():
            if session.room_id == room_id:
                session.abandon("its lease was taken by another gateway")

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

    def _versions(self) -> tuple[str, str] | None:
        """``(model_version, lexicon_version)`` as alerts carry them, once loaded (``monitor_build_info``)."""
        if self.resources is None:
            return None
        detectors = self.resources.detectors
        transcriber = self.resources.transcriber
        asr = transcriber.model_version if transcriber is not None else getattr(self.gateway, "model_version", None)
        models = [v for v in (asr, detectors.model_version) if v]
        return "+".join(models) or "none", detectors.lexicon_version

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
        """The open room sessions (connected or in resume grace), then pulled rooms whose source
        failed (until deleted), for ``/v1/rooms``."""
        rooms = [self.room_info(session) for session in self._sessions()]
        listed = {room["room_id"] for room in rooms}
        failed = [room.session for room in self.pulls.failed_rooms() if room.room_id not in listed]
        return rooms + [self.room_info(session) for session in failed if session is not None]

    def room_info(self, session: RoomSession) -> dict[str, Any]:
        """One room as ``/v1/rooms`` and room events show it; a pulled room adds its ``source``."""
        info = _room_info(session)
        if isinstance(session.connection, PulledRoom):
            info["connected"] = session.connection.live and not session.finished.is_set()
            info["source"] = session.connection.source_info()
        return info

    def _sessions(self) -> list[RoomSession]:
        return [session for session in self.rooms if isinstance(session, RoomSession)]

    def live_sessions(self) -> list[RoomSession]:
        """The room sessions not yet archived (streaming, in resume grace, or finishing)."""
        return self._sessions()

    def live_session(self, room_id: str) -> RoomSession | None:
        """The live session of ``room_id`` (streaming, in grace or finishing), or None."""
        session = self.rooms.get(room_id)
        return session if isinstance(session, RoomSession) else None

    def _alerts_sent(self, session: RoomSession, alerts: list[dict[str, Any]]) -> None:
        self.live_alerts.add(session.session_id, alerts)
        self.inspections.on_alerts(session, alerts)

    async def open_session(self, start: StartFrame, connection: RoomConnection) -> RoomSession:
        """The session ``start`` continues or begins (:class:`~monitor.server.rooms.RoomRegistry`);
        in cluster mode also one another gateway was streaming (taken over from its checkpoint)."""
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
        if self.gateway is not None:
            session = await self._open_cluster_session(start, connection, resources)
        else:
            session = RoomSession(
                resources,
                room_id=start.room_id,
                anchor_id=start.anchor_id,
                sample_rate=start.sample_rate,
                context=start.context,
                base_seq=start.seq or 0,
                opened_by=connection.grant.client_key,
            )
        self._register(session, connection)
        bind_room(session.room_id, session.session_id)  # the connection's log records name its room
        return session

    def open_pulled_session(
        self, *, room_id: str, anchor_id: str | None, context: Any, opened_by: str, connection: RoomSocket
    ) -> RoomSession:
        """A new session for a room the server pulls (:mod:`~monitor.server.pull`), fed 16 kHz PCM.
        Raises the ProtocolError that refuses it: ``room_busy`` while the room is live,
        ``too_many_sessions``, ``shutting_down``."""
        resources = self.resources
        if self._draining or resources is None:
            raise fatal(ErrorCode.SHUTTING_DOWN, "server is shutting down or still loading")
        if self.gateway is not None:  # a pulled room would need leases and a hand-over between gateways
            raise ProtocolError("not_supported", "pulled rooms are not available in cluster mode yet", fatal=True)
        existing = self.rooms.get(room_id)
        if existing is not None and not existing.finishing:
            raise fatal(ErrorCode.ROOM_BUSY, f"room {room_id!r} is live; stop it first")
        start = StartFrame(type="start", room_id=room_id, anchor_id=anchor_id, sample_rate=SAMPLE_RATE,
                           encoding="pcm_s16le", context=context)
        try:
            self.rooms.admit(start, opened_by)  # the per-token session bounds
        except ProtocolError as exc:
            if exc.code == ErrorCode.TOO_MANY_SESSIONS:
                self.metrics.limit_refusals.labels(limit="sessions_per_token").inc()
            raise
        session = RoomSession(resources, room_id=room_id, anchor_id=anchor_id, sample_rate=SAMPLE_RATE,
                              context=context, opened_by=opened_by)
        self._register(session, connection)
        return session

    def _register(self, session: RoomSession, connection: RoomSocket) -> None:
        session.on_finished = self._session_finished
        session.on_finishing = self._track_finish
        session.on_alerts = self._alerts_sent
        session.attach(connection)
        self.rooms.add(session)
        self.metrics.open_rooms.set(len(self.rooms))
        self.hub.publish_event({"type": "room", "event": "open", **self.room_info(session)})

    async def _open_cluster_session(
        self, start: StartFrame, connection: RoomConnection, resources: Resources
    ) -> RoomSession:
        """Cluster mode: take the room's lease; resume another gateway's session from its checkpoint
        when ``start`` names it (with ``seq``), else open a new one."""
        import uuid

        from monitor.cluster.gateway import TAKEOVER_WAIT_S
        from monitor.room import RoomContext

        gateway = self.gateway
        checkpoint = None
        if start.session_id is not None and start.seq is not None:
            checkpoint = await gateway.load_checkpoint(start.session_id)
            if checkpoint is not None and checkpoint.room_id != start.room_id:
                raise fatal(ErrorCode.RESUME_MISMATCH, f"session {start.session_id} is not a session of this room")
        session_id = checkpoint.session_id if checkpoint is not None else uuid.uuid4().hex
        # a resume may wait for a dead gateway's lease to run out; a new stream does not wait
        lease = await gateway.leases.acquire(
            start.room_id, session_id, wait_s=TAKEOVER_WAIT_S if checkpoint is not None else 0.0
        )
        room = gateway.room(session_id=session_id, room_id=start.room_id, epoch=lease.epoch)
        if checkpoint is None:
            session = RoomSession(
                resources, room_id=start.room_id, anchor_id=start.anchor_id, sample_rate=start.sample_rate,
                context=start.context, base_seq=start.seq or 0, opened_by=connection.grant.client_key,
                session_id=session_id, cluster=room,
            )  # fmt: skip
        else:
            session = RoomSession(
                resources, room_id=checkpoint.room_id, anchor_id=checkpoint.anchor_id,
                sample_rate=checkpoint.sample_rate, context=RoomContext(**checkpoint.context),
                base_seq=checkpoint.next_seq, opened_by=checkpoint.opened_by, session_id=session_id, cluster=room,
            )  # fmt: skip
            session.restore(checkpoint)
            connection.resumed = True
            gateway.metrics.lease_changes.labels(change="taken_over").inc()
            log.info("room %s session %s taken over from %s at seq %d", start.room_id, session_id,
                     checkpoint.gateway, checkpoint.next_seq)  # fmt: skip
        room.mark_start(session.pipeline, session.next_seq)
        room.checkpoint(session.checkpoint("start"))
        return session

    def _track_finish(self, task: asyncio.Task[None]) -> None:
        """Keep a finishing session's task until it is done, so drain can wait for it."""
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)

    def _session_finished(self, session: RoomSession) -> None:
        self.live_alerts.forget(session.session_id)  # archived now: the timeline reads the archive
        if self.gateway is not None and session.cluster is not None and session.room_id in self.gateway.leases.held:
            loop = asyncio.get_running_loop()  # tracked: a drain waits for them
            self._track_finish(loop.create_task(self.gateway.leases.release(session.room_id)))
            self._track_finish(loop.create_task(self.gateway.forget_session(session.session_id)))
        self.rooms.remove(session)
        self.metrics.open_rooms.set(len(self.rooms))
        self.hub.publish_event({"type": "room", "event": "closed", **self.room_info(session)})

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
        self.pulls.halt_all()  # pulled rooms stop reading; they are flushed below like every room
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
        await self.inspections.wait_idle()  # tickets of the last claims, before the archive closes
        if self.webhooks is not None:
            await self.webhooks.stop()  # what is not delivered stays queued on disk for the next start
        self.loader.close()
        if self.gateway is not None:
            await self.gateway.close()
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
