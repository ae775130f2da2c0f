"""The server's web application (FastAPI on Starlette): every route on the one port.

=================================  =========================================================
``/v1/ingest`` (websocket)         a room's audio (:class:`~monitor.server.connection.RoomConnection`)
``/v1/alerts`` (websocket)         alerts, room events, decisions (:func:`~monitor.server.connection.serve_subscriber`)
``GET /healthz``, ``GET /readyz``  liveness / readiness for load balancers
``GET /metrics``                   Prometheus text
``GET /v1/checkpoint``             the archive's latest signed checkpoint (any valid token)
``POST /v1/decisions``             a moderator's decision (:mod:`monitor.server.decisions`)
reports, timelines, inspections    :mod:`monitor.server.reports`, :mod:`monitor.server.inspections`
``POST``/``DELETE /v1/rooms``      pull a stream into a room, stop it (:mod:`monitor.server.pull`)
``/v1/claims``                     which moderator works on which alert (:mod:`monitor.server.claims`)
console and archive routes         :mod:`monitor.server.console_routes`
``GET /openapi.json``              the OpenAPI document of every HTTP route, generated from them
=================================  =========================================================

A websocket handshake is decided before the upgrade, once: the grant from the token or
console cookie (401 with ``WWW-Authenticate: Bearer realm="monitor"``, 403), the
``/v1/alerts`` query parsed into a :class:`~monitor.server.hub.Subscription` (400 naming
the parameter), and readiness (503 while loading or draining); a refusal is an ordinary
HTTP answer (ASGI's websocket denial response). A plain GET on a websocket route gets
the same refusals, else 426. Unknown paths answer 404, wrong methods 405, bodies and
parameters that do not validate 400 (:mod:`monitor.server.responses`).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, WebSocket
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from monitor.errors import ArchiveError
from monitor.server.auth import ALERTS_PATH, INGEST_PATH, Denial, Grant, authenticate_request, authorize
from monitor.server.claims import CLAIM_TTL_S, ClaimDesk, add_claim_routes
from monitor.server.connection import RoomConnection, serve_subscriber
from monitor.server.decisions import add_decision_route
from monitor.server.hub import Subscription, parse_subscription
from monitor.server.inspections import add_inspection_routes
from monitor.server.pull import add_pull_routes
from monitor.server.reports import add_report_routes
from monitor.server.responses import (
    BEARER_CHALLENGE,
    TEXT,
    Refusal,
    refusal_response,
    respond,
    validation_response,
)
from monitor.server.sockets import AsgiSocket

if TYPE_CHECKING:
    from monitor.server.app import MonitorServer

CHECKPOINT_PATH = "/v1/checkpoint"
"""The archive's latest signed checkpoint (C2SP note), for witnesses; any valid token."""

API_DESCRIPTION = (
    "Live-stream speech compliance monitor. The websocket routes /v1/ingest and /v1/alerts and "
    "their messages are specified in docs/PROTOCOL.md; this document covers the HTTP routes."
)

TEXT_ANSWER: dict[int | str, dict[str, Any]] = {200: {"content": {"text/plain": {}}}}


def build_app(server: MonitorServer) -> FastAPI:
    """The ASGI application of ``server`` (its shared parts are read at request time)."""
    app = FastAPI(
        title="monitor serve",
        version="1",
        description=API_DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url=None,  # the interactive pages load scripts from a CDN; the JSON is enough
        redoc_url=None,
    )
    app.add_exception_handler(Refusal, refusal_response)
    app.add_exception_handler(RequestValidationError, validation_response)
    app.add_exception_handler(HTTPException, _http_error)
    settings = server.settings

    # -- health, metrics, checkpoint -------------------------------------------------------------
    @app.get("/healthz", response_class=PlainTextResponse, tags=["operations"], responses=TEXT_ANSWER,
             summary="200 once models are loaded (ok, or degraded: ...); 503 while loading or draining")
    async def healthz() -> Response:
        return _health(server, ready_only=False)

    @app.get("/readyz", response_class=PlainTextResponse, tags=["operations"], responses=TEXT_ANSWER,
             summary="Like /healthz, but 503 while the evidence archive is unavailable")
    async def readyz() -> Response:
        return _health(server, ready_only=True)

    @app.get("/metrics", response_class=PlainTextResponse, tags=["operations"], responses=TEXT_ANSWER,
             summary="Prometheus text exposition (names in docs/PROTOCOL.md)")
    async def metrics() -> Response:
        return respond(200, server.metrics.render(), server.metrics.content_type)

    @app.get(CHECKPOINT_PATH, response_class=PlainTextResponse, tags=["archive"], responses=TEXT_ANSWER,
             summary="The evidence archive's latest signed checkpoint (C2SP note); any valid token")
    async def checkpoint(request: Request) -> Response:
        from monitor.archive.witness import latest_checkpoint_text

        grant = authenticate_request(settings.tokens, request.headers, server.sessions)
        if isinstance(grant, Denial):
            raise Refusal(grant.status, grant.reason, headers=BEARER_CHALLENGE if grant.status == 401 else None)
        try:
            text = await asyncio.to_thread(latest_checkpoint_text, settings.data_dir)
        except ArchiveError as exc:
            raise Refusal(503, str(exc)) from exc
        return respond(200, text)

    # -- the websocket routes, and a plain GET on them ----------------------------------------------
    def decide_handshake(path: str, query: str, headers: Any) -> tuple[Grant, Subscription | None]:
        """Auth, the alerts query and readiness, once per handshake; raises the Refusal to answer."""
        grant = authorize(settings.tokens, headers, f"{path}?{query}" if query else path, server.sessions)
        if isinstance(grant, Denial):
            raise Refusal(grant.status, grant.reason, headers=BEARER_CHALLENGE if grant.status == 401 else None)
        subscription = None
        if path == ALERTS_PATH:
            try:
                subscription = parse_subscription(grant, query)
            except ValueError as exc:
                raise Refusal(400, str(exc)) from exc
        if not server.ready:
            raise Refusal(503, "not ready: models loading or server draining")
        return grant, subscription

    async def admit(websocket: WebSocket) -> tuple[Grant, Subscription | None] | None:
        try:
            return decide_handshake(websocket.url.path, websocket.url.query, websocket.headers)
        except Refusal as refusal:
            await websocket.send_denial_response(respond(refusal.status, refusal.message + "\n", TEXT, refusal.headers))
            return None

    @app.websocket(INGEST_PATH)
    async def ingest(websocket: WebSocket) -> None:
        admitted = await admit(websocket)
        if admitted is None or server.resources is None:
            return
        grant, _ = admitted
        async with server.socket_open():
            await websocket.accept()
            await RoomConnection(AsgiSocket(websocket), grant, server.resources, server.open_session).run()

    @app.websocket(ALERTS_PATH)
    async def alerts(websocket: WebSocket) -> None:
        admitted = await admit(websocket)
        if admitted is None or server.resources is None:
            return
        grant, subscription = admitted
        assert subscription is not None  # parsed for every /v1/alerts handshake
        resources = server.resources
        async with server.socket_open():
            await websocket.accept()
            archived: list[dict[str, Any]] = []
            since = subscription.since
            if since is not None and not server.hub.holds_since(since):
                # memory no longer (or not yet, after a restart) holds what follows `since`: the archive does
                archived = await asyncio.to_thread(
                    resources.evidence.alerts_after, since, limit=settings.replay_buffer_alerts
                )
            subscriber = server.hub.subscribe(
                subscription.filter, since=since, events=subscription.events, archived=archived
            )

            async def on_message(message: str | bytes) -> None:
                await server.desk.answer_message(grant, subscriber, message)

            await serve_subscriber(
                AsgiSocket(websocket), subscriber, on_exit=lambda: server.hub.unsubscribe(subscriber),
                on_message=on_message,
            )

    handshake_answers: dict[int | str, dict[str, Any]] = {
        400: {"description": "bad /v1/alerts query (names the parameter)"},
        401: {"description": "no or unknown credential (WWW-Authenticate: Bearer)"},
        403: {"description": "role or room scope"},
        426: {"description": "authorized: upgrade to a websocket (docs/PROTOCOL.md)"},
        503: {"description": "models loading or server draining"},
    }

    @app.get(INGEST_PATH, tags=["websockets"], responses=handshake_answers,
             summary="Websocket: a room's audio in, transcripts and alerts out (docs/PROTOCOL.md)")
    async def ingest_without_upgrade(request: Request) -> Response:
        decide_handshake(request.url.path, request.url.query, request.headers)
        raise _upgrade_required()

    @app.get(ALERTS_PATH, tags=["websockets"], responses=handshake_answers,
             summary="Websocket: alerts, room events and decisions of the rooms in scope (docs/PROTOCOL.md)")
    async def alerts_without_upgrade(request: Request) -> Response:
        decide_handshake(request.url.path, request.url.query, request.headers)
        raise _upgrade_required()

    # -- the console, its archive routes, decisions --------------------------------------------------
    server.console.add_routes(app, lexicon_dir=settings.lexicon_dir, room_sessions=server.rooms.get)
    add_decision_route(app, server.desk, settings.tokens, server.sessions)
    add_report_routes(app, server)
    add_inspection_routes(app, server)
    add_pull_routes(app, server.pulls, settings.tokens, server.sessions, describe=server.room_info,
                    ready=lambda: server.ready)
    claims = ClaimDesk(server.hub, lambda: server.resources.evidence if server.resources else None,
                       ttl_s=getattr(settings, "claim_ttl_s", CLAIM_TTL_S))
    add_claim_routes(app, claims, settings.tokens, server.sessions)
    app.state.claims = claims

    @app.websocket("/{path:path}")
    async def unknown_socket(websocket: WebSocket, path: str) -> None:
        await websocket.send_denial_response(respond(404, f"no route /{path}; see docs/PROTOCOL.md\n"))

    return app


def _upgrade_required() -> Refusal:
    return Refusal(426, "this route is a websocket: send the upgrade handshake",
                   headers={"Upgrade": "websocket", "Connection": "Upgrade"})


async def _http_error(request: Request, exc: Exception) -> Response:
    """404 for unknown paths, 405 (with ``Allow``) for wrong methods: plain text, as every other answer."""
    assert isinstance(exc, HTTPException)
    missing = exc.status_code == 404
    body = f"no route {request.url.path}; see docs/PROTOCOL.md\n" if missing else f"{exc.detail}\n"
    return respond(exc.status_code, body, TEXT, dict(exc.headers or {}))


def _health(server: MonitorServer, *, ready_only: bool) -> Response:
    """``/healthz``: 200 once the models are loaded (body ``ok``, or ``degraded: ...`` while the
    evidence archive cannot be written); ``/readyz``: the same but 503 while degraded, so a load
    balancer sends new rooms to a server that can archive their evidence."""
    resources = server.resources
    if not server.ready or resources is None:
        return respond(503, "draining\n" if server.draining else "loading models\n")
    evidence = resources.evidence
    if evidence.available:
        return respond(200, "ok\n")
    # alerts still go out (with evidence_id null); the archive is retried meanwhile
    why = (
        f"degraded: evidence archive unavailable ({evidence.why_missing}); "
        f"alerts are sent without evidence, retrying every {server.settings.archive_retry_s:g} s\n"
    )
    return respond(503 if ready_only else 200, why)
