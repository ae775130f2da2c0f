"""The streaming server: HTTP routes and auth before the upgrade, rooms, alert routing, drain.

:class:`MonitorServer` holds only shared resources (models, archive, hub, worker pool,
metrics) and the registry of open room sessions by ``room_id`` (needed to resume one);
all per-room state lives in :class:`~monitor.server.session.RoomSession` and all
per-socket state in :class:`~monitor.server.connection.RoomConnection`::

    server = MonitorServer(settings)
    await server.start()          # listening; /healthz is 503 until models are loaded
    await server.loaded.wait()    # models loaded and warmed: /healthz is 200
    ...
    await server.drain()          # SIGTERM: flush every room, send and archive everything
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from monitor.config import Settings
from monitor.errors import ArchiveError, ArchiveKeyError, ProtocolError
from monitor.server.auth import ALERTS_PATH, CONSOLE_ROLES, INGEST_PATH, Denial, Grant, authenticate, authorize
from monitor.server.connection import RoomConnection, serve_subscriber
from monitor.server.console_routes import ConsoleRoutes, same_origin
from monitor.server.console_sessions import ConsoleSessions
from monitor.server.evidence import EvidenceWriter
from monitor.server.hub import EVENT_KINDS, AlertFilter, AlertHub, Subscriber
from monitor.server.limits import ConnectionGate, RateLimits
from monitor.server.logs import redacting_logger
from monitor.server.metrics import ServerMetrics
from monitor.server.protocol import ErrorCode, StartFrame, error_frame, fatal, parse_decision, recoverable
from monitor.server.rooms import RoomRegistry
from monitor.server.scheduler import FairScheduler
from monitor.server.session import Resources, RoomSession
from monitor.taxonomy import CATEGORIES, Severity

log = logging.getLogger(__name__)

CHECKPOINT_PATH = "/v1/checkpoint"
"""The archive's latest signed checkpoint (C2SP note), for witnesses; any valid token."""



def _text_response(connection: ServerConnection, status: int, text: str, **headers: str) -> Response:
    response = connection.respond(status, text)
    for name, value in headers.items():
        name = name.replace("_", "-")
        if name in response.headers:
            del response.headers[name]
        response.headers[name] = value
    return response


def parse_alert_filter(grant: Grant, query: str) -> tuple[AlertFilter, str | None]:
    """The subscriber's filter and ``since`` from a ``/v1/alerts`` query string; ValueError if invalid."""
    params = parse_qs(query)

    def listed(name: str) -> frozenset[str] | None:
        values = [v for raw in params.get(name, []) for v in raw.split(",") if v]
        return frozenset(values) if values else None

    categories = listed("category")
    unknown = sorted((categories or frozenset()) - set(CATEGORIES))
    if unknown:
        raise ValueError(f"unknown category {unknown[0]!r}; categories are {list(CATEGORIES)}")
    severity_text = params.get("min_severity", ["info"])[-1]
    try:
        min_severity = Severity(severity_text)
    except ValueError:
        raise ValueError(
            f"min_severity={severity_text!r} is not one of {[s.value for s in Severity]}"
        ) from None
    since = params.get("since", [None])[-1]
    return AlertFilter(grant, rooms=listed("room"), categories=categories, min_severity=min_severity), since


def parse_included_events(query: str) -> frozenset[str]:
    """The extra message types a ``/v1/alerts`` query asks for with ``include=rooms,decisions``."""
    asked = [v for raw in parse_qs(query).get("include", []) for v in raw.split(",") if v]
    unknown = sorted(set(asked) - set(EVENT_KINDS))
    if unknown:
        raise ValueError(f"include={unknown[0]!r} is not one of {sorted(EVENT_KINDS)}")
    return frozenset(EVENT_KINDS[v] for v in asked)


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
        self._decisions = RateLimits(
            settings.decisions_per_moderator_per_s, max(1.0, 4 * settings.decisions_per_moderator_per_s)
        )
        self._finishing: set[asyncio.Task[None]] = set()  # sessions finishing (stopped, replaced, expired)
        self._archive_retry: asyncio.Task[None] | None = None
        self.resources: Resources | None = None
        self.loaded = asyncio.Event()
        self.load_error: BaseException | None = None
        self._ws_server: Server | None = None
        self._draining = False
        self._load_task: asyncio.Task[None] | None = None
        self.sessions = ConsoleSessions(ttl_s=settings.console_session_ttl_s, secure=settings.console_cookie_secure)
        self.console = ConsoleRoutes(
            settings.tokens,
            self.sessions,
            evidence=lambda: self.resources.evidence if self.resources is not None else None,
            rooms=self.room_list,
        )

    # -- start-up -----------------------------------------------------------------------
    async def start(self) -> None:
        """Listen on ``settings.host``/``settings.port`` and load the models in the background."""
        s = self.settings
        self._ws_server = await serve(
            self._handle,
            s.host,
            s.port,
            process_request=self._process_request,
            create_connection=gated_connection(self.gate, self.metrics),
            open_timeout=s.handshake_timeout_s,  # a stalled handshake is dropped after this
            compression=None,  # PCM does not deflate; save the CPU for the models
            # frames up to twice the limit are read and answered with frame_too_large;
            # beyond that the websockets library closes with 1009 itself
            max_size=max(2 * s.max_frame_bytes, 65536),
            ping_interval=s.ping_interval_s,
            ping_timeout=s.ping_timeout_s,
            close_timeout=5,
            logger=redacting_logger(),  # never logs an Authorization or Cookie header
        )
        self._load_task = asyncio.create_task(self._load())

    @property
    def port(self) -> int:
        """The TCP port actually bound (useful with ``port=0``)."""
        assert self._ws_server is not None, "start() first"
        return int(self._ws_server.sockets[0].getsockname()[1])

    async def _load(self) -> None:
        try:
            self.resources = await asyncio.get_running_loop().run_in_executor(None, self._load_blocking)
        except Exception as exc:  # reported by whoever waits on `loaded` (serve exits non-zero)
            self.load_error = exc
            log.error("models failed to load: %s", exc)
        finally:
            self.loaded.set()
        if self.resources is not None and not self.resources.evidence.available:
            self._archive_retry = asyncio.create_task(self._retry_archive(self.resources.evidence))

    async def _retry_archive(self, evidence: EvidenceWriter) -> None:
        """Try to open the archive every ``archive_retry_s`` until it opens (``/healthz`` says
        ``degraded`` meanwhile; alerts go out with ``evidence_id: null``)."""
        from monitor.archive.archive import EvidenceArchive

        while not self._draining:
            await asyncio.sleep(self.settings.archive_retry_s)
            try:
                archive = await asyncio.to_thread(
                    EvidenceArchive.open, self.settings.data_dir, signing_key=self.settings.signing_key
                )
            except (ArchiveError, OSError) as exc:
                evidence.set_missing(str(exc))
                self.metrics.archive_errors.inc()
                log.warning("evidence archive %s still unavailable: %s", self.settings.data_dir, exc)
                continue
            if self._draining:
                await asyncio.to_thread(archive.close)
                return
            evidence.attach(archive)
            log.info("evidence archive %s opened; alerts are archived again", self.settings.data_dir)
            return

    def _load_blocking(self) -> Resources:
        from monitor.asr.transcriber import load_transcriber
        from monitor.asr.vad import StreamingSegmenter
        from monitor.pipeline import load_detectors

        settings = self.settings
        detectors = load_detectors(settings)  # loaded and warmed once per process
        transcriber = load_transcriber(settings)
        StreamingSegmenter().feed(np.zeros(16000, dtype=np.float32))  # loads the shared Silero model
        evidence = self._open_archive()
        return Resources(
            settings=settings,
            detectors=detectors,
            transcriber=transcriber,
            evidence=evidence,
            hub=self.hub,
            metrics=self.metrics,
            scheduler=self.scheduler,
        )

    def _open_archive(self) -> EvidenceWriter:
        from monitor.archive.archive import EvidenceArchive

        try:
            archive = EvidenceArchive.open(self.settings.data_dir, signing_key=self.settings.signing_key)
        except ArchiveKeyError:
            raise  # a missing or wrong signing key would orphan every checkpoint: refuse to start
        except (ArchiveError, OSError) as exc:
            # alerts matter more than their evidence: serve anyway, evidence_id null, errors counted
            log.error(
                "evidence archive %s unavailable, alerts go out without evidence: %s",
                self.settings.data_dir,
                exc,
            )
            return EvidenceWriter(None, self.metrics, why_missing=str(exc))
        return EvidenceWriter(archive, self.metrics)

    @property
    def ready(self) -> bool:
        return self.resources is not None and not self._draining

    # -- HTTP, before the upgrade ---------------------------------------------------------
    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        parts = urlsplit(request.path)
        if isinstance(connection, _GatedConnection):
            connection.handshake_received()
        if parts.path in ("/healthz", "/readyz"):
            return self._health(connection, ready_only=parts.path == "/readyz")
        if parts.path == "/metrics":
            return _text_response(
                connection, 200, self.metrics.render().decode(), Content_Type=self.metrics.content_type
            )
        if parts.path == CHECKPOINT_PATH:
            return await self._checkpoint(connection, request)
        if self.console.handles(parts.path):
            return await self.console.respond(connection, request)
        if parts.path not in (INGEST_PATH, ALERTS_PATH):
            return _text_response(connection, 404, f"no route {parts.path}; see docs/PROTOCOL.md\n")
        decision = self._authorize(request)
        if isinstance(decision, Denial):
            headers = {"WWW_Authenticate": 'Bearer realm="monitor"'} if decision.status == 401 else {}
            return _text_response(connection, decision.status, decision.reason + "\n", **headers)
        if parts.path == ALERTS_PATH:
            try:
                parse_alert_filter(decision, parts.query)
                parse_included_events(parts.query)
            except ValueError as exc:
                return _text_response(connection, 400, f"{exc}\n")
        if not self.ready:
            return _text_response(connection, 503, "not ready: models loading or server draining\n")
        return None

    async def _checkpoint(self, connection: ServerConnection, request: Request) -> Response:
        """``GET /v1/checkpoint`` (any valid token): the archive's latest C2SP signed checkpoint,
        the same text as ``monitor archive checkpoint``, for witnesses to keep."""
        from monitor.archive.witness import latest_checkpoint_text

        grant = authenticate(self.settings.tokens, _plain(request.headers), self.sessions)
        if isinstance(grant, Denial):
            return _text_response(connection, grant.status, grant.reason + "\n",
                                  WWW_Authenticate='Bearer realm="monitor"')
        try:
            text = await asyncio.to_thread(latest_checkpoint_text, self.settings.data_dir)
        except ArchiveError as exc:
            return _text_response(connection, 503, f"{exc}\n")
        return _text_response(connection, 200, text, Content_Type="text/plain; charset=utf-8")

    def _health(self, connection: ServerConnection, *, ready_only: bool) -> Response:
        """``/healthz``: 200 once the models are loaded (body ``ok``, or ``degraded: ...`` while the
        evidence archive cannot be written); ``/readyz``: the same but 503 while degraded, so a load
        balancer sends new rooms to a server that can archive their evidence."""
        if not self.ready:
            return _text_response(connection, 503, "draining\n" if self._draining else "loading models\n")
        assert self.resources is not None
        evidence = self.resources.evidence
        if evidence.available:
            return _text_response(connection, 200, "ok\n")
        # alerts still go out (with evidence_id null); the archive is retried meanwhile
        why = (
            f"degraded: evidence archive unavailable ({evidence.why_missing}); "
            f"alerts are sent without evidence, retrying every {self.settings.archive_retry_s:g} s\n"
        )
        return _text_response(connection, 503 if ready_only else 200, why)

    def _authorize(self, request: Request) -> Grant | Denial:
        decision = authorize(self.settings.tokens, _plain(request.headers), request.path, self.sessions)
        if isinstance(decision, Grant) and decision.via_cookie and not same_origin(request):
            # cross-site websocket hijacking: another site's page opening our socket with our cookie
            return Denial(403, "console cookie sent from another origin")
        return decision

    def room_list(self) -> list[dict[str, Any]]:
        """The open room sessions (connected or in resume grace), for ``/v1/rooms``."""
        return [_room_info(session) for session in self._sessions()]

    def _sessions(self) -> list[RoomSession]:
        return [session for session in self.rooms if isinstance(session, RoomSession)]

    # -- websocket handlers -------------------------------------------------------------
    async def _handle(self, ws: ServerConnection) -> None:
        request = ws.request
        assert request is not None  # handlers run after the handshake
        grant = self._authorize(request)
        if not isinstance(grant, Grant) or self.resources is None:
            return  # process_request already refused; unreachable in practice
        parts = urlsplit(request.path)
        if parts.path == INGEST_PATH:
            await RoomConnection(ws, grant, self.resources, self._open_session).run()
            return
        alert_filter, since = parse_alert_filter(grant, parts.query)
        archived: list[dict[str, Any]] = []
        if since is not None and not self.hub.holds_since(since):
            # memory no longer (or not yet, after a restart) holds what follows `since`: the archive does
            archived = await asyncio.to_thread(
                self.resources.evidence.alerts_after, since, limit=self.settings.replay_buffer_alerts
            )
        subscriber = self.hub.subscribe(
            alert_filter, since=since, events=parse_included_events(parts.query), archived=archived
        )

        async def on_message(message: str | bytes) -> None:
            await self._subscriber_message(grant, subscriber, message)

        await serve_subscriber(
            ws, subscriber, on_exit=lambda: self.hub.unsubscribe(subscriber), on_message=on_message
        )

    async def _subscriber_message(self, grant: Grant, subscriber: Subscriber, message: str | bytes) -> None:
        """A ``decision`` from a moderator: archive it, broadcast it, acknowledge it (docs/PROTOCOL.md)."""
        assert self.resources is not None
        request_id = None
        try:
            frame = parse_decision(message)
            request_id = frame.request_id
            if grant.role not in CONSOLE_ROLES:
                raise recoverable(
                    ErrorCode.DECISION_REFUSED, f"role {grant.role!r} may not decide alerts; needs moderator or admin"
                )
            if not self._decisions.allow(grant.client_key):
                self.metrics.limit_refusals.labels(limit="decisions_per_moderator_per_s").inc()
                raise recoverable(
                    ErrorCode.RATE_LIMITED,
                    f"more than {self.settings.decisions_per_moderator_per_s:g} decisions per second; "
                    "this one was not recorded, send it again",
                )
            evidence = self.resources.evidence
            try:
                summary = await asyncio.to_thread(lambda: evidence.require().get(frame.evidence_id))
                if not grant.may_see(summary.room_id):
                    raise ArchiveError(f"evidence {frame.evidence_id} is outside the token's rooms")
                leaf = await asyncio.to_thread(
                    evidence.record_decision,
                    frame.evidence_id,
                    decision=frame.decision,
                    by=grant.identity,
                    reason=frame.reason,
                )
            except ArchiveError as exc:
                raise recoverable(ErrorCode.DECISION_REFUSED, str(exc)) from exc
        except ProtocolError as exc:
            subscriber.offer({**error_frame(exc), "request_id": request_id})
            return
        log.info("decision %s on evidence %s by %s", leaf["decision"], leaf["evidence_id"], leaf["by"])
        event = {"type": "decision", **leaf}
        self.hub.publish_event(event)
        subscriber.offer({"type": "decision_recorded", "request_id": request_id, "decision_id": leaf["decision_id"]})

    def _open_session(self, start: StartFrame, connection: RoomConnection) -> RoomSession:
        """The session ``start`` continues or begins (:class:`~monitor.server.rooms.RoomRegistry`)."""
        assert self.resources is not None
        if self._draining:
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
            self.resources,
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
        if self._ws_server is not None:
            self._ws_server.close(close_connections=False)
        if self._load_task is not None and not self._load_task.done():
            self._load_task.cancel()
        if self._archive_retry is not None:
            self._archive_retry.cancel()
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
        if self._ws_server is not None:
            try:
                await asyncio.wait_for(self._ws_server.wait_closed(), timeout=10)
            except TimeoutError:
                log.warning("drain: sockets still open after 10 s; closing them")
                self._ws_server.close(close_connections=True)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._ws_server.wait_closed(), timeout=10)
        await asyncio.get_running_loop().run_in_executor(None, self.scheduler.shutdown)
        if self.resources is not None:
            self.resources.evidence.close()
        log.info("drained")


class _GatedConnection(ServerConnection):
    """A server connection counted by a :class:`ConnectionGate`; refused with HTTP 503 (raw, before
    any handshake is read) when the server holds too many sockets or stalled handshakes."""

    gate: ConnectionGate
    metrics: ServerMetrics
    _admitted = False
    _handshake_pending = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        refused = self.gate.admit()
        if refused is not None:
            self.metrics.limit_refusals.labels(limit=refused).inc()
            body = f"server busy: too many {refused.replace('_', ' ')}; retry later\n".encode()
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(
                b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nConnection: close\r\n"
                b"Content-Type: text/plain; charset=utf-8\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            transport.close()
            return
        self._admitted = True
        self._handshake_pending = True

    def handshake_received(self) -> None:
        """The HTTP request arrived: no longer a pending (possibly stalled) handshake."""
        if self._admitted and self._handshake_pending:
            self._handshake_pending = False
            self.gate.handshake_done()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._admitted:
            self._admitted = False
            self.gate.closed(handshake_pending=self._handshake_pending)
            self._handshake_pending = False
        super().connection_lost(exc)


def gated_connection(gate: ConnectionGate, metrics: ServerMetrics) -> type[ServerConnection]:
    """The connection class ``serve`` makes per TCP connection, bound to this server's gate."""
    return type("GatedConnection", (_GatedConnection,), {"gate": gate, "metrics": metrics})


def _plain(headers: Headers) -> dict[str, Any]:
    """Case-insensitive single-valued view of the request headers for :func:`authorize`."""
    return {name: headers[name] for name in ("Authorization", "Cookie") if name in headers}


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
