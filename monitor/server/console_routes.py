"""Plain-HTTP routes of the moderator console and the JSON endpoints it reads.

Served from ``process_request`` (websockets' HTTP layer: GET only, one request per
connection). Routes, all documented in docs/CONSOLE.md:

=====================================  ==========================================
``/console``, ``/console/<file>``      the page (static files of ``monitor.console``)
``/console/session``                   with ``Authorization: Bearer``: sign in, set the cookie;
                                       with the cookie: who is signed in (401 if nobody)
``/console/logout``                    end the session, clear the cookie
``/v1/rooms``                          live rooms, their anchors and alert counts
``/v1/evidence/<id>``                  one record: alert, transcript, clip facts, proof, decisions
``/v1/evidence/<id>/clip``             the archived FLAC clip
``/v1/anchors?bucket=day|hour``        per anchor: alerts and decisions over time
``/v1/decisions.jsonl``                confirmed and dismissed alerts as labeled JSONL
=====================================  ==========================================

Everything but the static page needs a bearer token or the console cookie; evidence,
anchors and decisions need a ``moderator`` or ``admin`` role. Archive reads run in a
thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from monitor.errors import ArchiveError
from monitor.server.auth import CONSOLE_ROLES, SUBSCRIBE_ROLES, Denial, Grant, authenticate
from monitor.server.console_sessions import ConsoleSessions
from monitor.server.evidence import EvidenceWriter

log = logging.getLogger(__name__)

STATIC_FILES = {
    "index.html": "text/html; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
}
"""The console's files (``monitor/console/static/``) and their media types."""

EVIDENCE_PATH = re.compile(r"^/v1/evidence/([0-9a-f]{32})(/clip)?$")


def respond(
    connection: ServerConnection, status: int, body: bytes | str, content_type: str, **headers: str
) -> Response:
    """An HTTP response with ``body``; ``headers`` names use ``_`` for ``-``."""
    response = connection.respond(status, "")
    data = body.encode("utf-8") if isinstance(body, str) else body
    fresh = Headers()
    for name, value in response.headers.raw_items():
        if name.lower() not in ("content-type", "content-length"):
            fresh[name] = value
    fresh["Content-Type"] = content_type
    fresh["Content-Length"] = str(len(data))
    fresh["Cache-Control"] = "no-store"
    fresh["X-Content-Type-Options"] = "nosniff"
    for name, value in headers.items():
        fresh[name.replace("_", "-")] = value
    response.headers = fresh
    response.body = data
    return response


def json_response(connection: ServerConnection, status: int, value: Any, **headers: str) -> Response:
    return respond(
        connection, status, json.dumps(value, ensure_ascii=False), "application/json; charset=utf-8", **headers
    )


def request_headers(request: Request) -> dict[str, str]:
    """The headers :func:`~monitor.server.auth.authenticate` reads (single-valued)."""
    return {name: request.headers[name] for name in ("Authorization", "Cookie") if name in request.headers}


def same_origin(request: Request) -> bool:
    """False when the browser says the request comes from another site (``Origin`` host differs)."""
    origin = request.headers.get("Origin")
    if not origin or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("Host", "")


def static_file(name: str) -> bytes:
    """The bytes of one console file shipped in the package."""
    return resources.files("monitor.console").joinpath("static", name).read_bytes()


class ConsoleRoutes:
    """The console's HTTP routes over the server's shared parts (see the module docstring)."""

    def __init__(
        self,
        tokens: Any,
        sessions: ConsoleSessions,
        evidence: Callable[[], EvidenceWriter | None],
        rooms: Callable[[], list[dict[str, Any]]],
    ) -> None:
        self._tokens = tokens
        self.sessions = sessions
        self._evidence = evidence
        self._rooms = rooms

    def handles(self, path: str) -> bool:
        """Whether ``path`` (no query) is one of these routes."""
        return (
            path == "/console"
            or path.startswith("/console/")
            or path in ("/v1/rooms", "/v1/anchors", "/v1/decisions.jsonl")
            or path.startswith("/v1/evidence/")
        )

    def authenticate(self, request: Request) -> Grant | Denial:
        """Bearer token or console cookie; a cookie from another site's page is refused (403)."""
        grant = authenticate(self._tokens, request_headers(request), self.sessions)
        if isinstance(grant, Grant) and grant.via_cookie and not same_origin(request):
            return Denial(403, "console cookie sent from another origin")
        return grant

    async def respond(self, connection: ServerConnection, request: Request) -> Response:
        """Answer one request to a path :meth:`handles` accepted."""
        parts = urlsplit(request.path)
        path = parts.path
        if path in ("/console", "/console/"):
            return self._static(connection, request, "index.html")
        if path == "/console/session":
            return self._session(connection, request)
        if path == "/console/logout":
            self.sessions.end(request.headers.get("Cookie", ""))
            return json_response(connection, 200, {"signed_out": True}, Set_Cookie=self.sessions.clearing_cookie())
        if path.startswith("/console/"):
            name = path.removeprefix("/console/")
            if name in STATIC_FILES:
                return self._static(connection, request, name)
            return respond(connection, 404, f"no console file {name}\n", "text/plain; charset=utf-8")
        grant = self.authenticate(request)
        if isinstance(grant, Denial):
            return self._denied(connection, grant)
        if path == "/v1/rooms":
            if grant.role not in SUBSCRIBE_ROLES:
                return self._denied(connection, Denial(403, f"role {grant.role!r} may not watch rooms"))
            rooms = [room for room in self._rooms() if grant.may_see(room["room_id"])]
            return json_response(connection, 200, {"rooms": rooms})
        if grant.role not in CONSOLE_ROLES:
            return self._denied(connection, Denial(403, f"role {grant.role!r} may not read the archive"))
        evidence = self._evidence()
        if evidence is None:
            return respond(connection, 503, "not ready: models loading\n", "text/plain; charset=utf-8")
        try:
            return await self._archive_route(connection, path, parts.query, evidence)
        except ArchiveError as exc:
            status = 404 if "no evidence with id" in str(exc) else 503
            return respond(connection, status, f"{exc}\n", "text/plain; charset=utf-8")

    async def _archive_route(
        self, connection: ServerConnection, path: str, query: str, evidence: EvidenceWriter
    ) -> Response:
        found = EVIDENCE_PATH.match(path)
        if found:
            evidence_id, clip = found.groups()
            if clip:
                data = await asyncio.to_thread(evidence.read_clip, evidence_id)
                return respond(connection, 200, data, "audio/flac",
                               Content_Disposition=f'inline; filename="{evidence_id}.flac"')
            view = await asyncio.to_thread(evidence.evidence_view, evidence_id)
            return json_response(connection, 200, view)
        if path == "/v1/anchors":
            params = parse_qs(query)
            bucket = params.get("bucket", ["day"])[-1]
            since = params.get("since", [None])[-1]
            rows = await asyncio.to_thread(evidence.anchor_record, bucket=bucket, since=since)
            return json_response(connection, 200, {"bucket": bucket, "anchors": anchors_from_rows(rows)})
        if path == "/v1/decisions.jsonl":
            examples = await asyncio.to_thread(evidence.labeled_decisions)
            body = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples)
            return respond(connection, 200, body, "application/x-ndjson; charset=utf-8",
                           Content_Disposition='attachment; filename="decisions.jsonl"')
        return respond(connection, 404, f"no route {path}; see docs/CONSOLE.md\n", "text/plain; charset=utf-8")

    def _session(self, connection: ServerConnection, request: Request) -> Response:
        if "Authorization" in request.headers:
            grant = authenticate(self._tokens, request_headers(request))
            if isinstance(grant, Denial):
                return self._denied(connection, grant)
            if grant.role not in CONSOLE_ROLES:
                return self._denied(
                    connection, Denial(403, f"role {grant.role!r} may not use the console; needs moderator or admin")
                )
            session_id, expires_at = self.sessions.create(grant)
            log.info("console sign-in: %s (%s)", grant.identity, grant.role)
            return json_response(
                connection, 200, _who(grant, expires_at), Set_Cookie=self.sessions.cookie(session_id)
            )
        grant = self.authenticate(request)
        if isinstance(grant, Denial):
            return self._denied(connection, Denial(401, "not signed in") if grant.status == 401 else grant)
        session_id = self.sessions.session_id_from(request.headers.get("Cookie", "")) or ""
        session = self.sessions.get(session_id)
        return json_response(connection, 200, _who(grant, session.expires_at if session else None))

    def _static(self, connection: ServerConnection, request: Request, name: str) -> Response:
        host = request.headers.get("Host", "")
        policy = (
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"media-src 'self' blob:; connect-src 'self' ws://{host} wss://{host}; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )
        return respond(
            connection, 200, static_file(name), STATIC_FILES[name],
            Content_Security_Policy=policy, Referrer_Policy="no-referrer", X_Frame_Options="DENY",
        )

    @staticmethod
    def _denied(connection: ServerConnection, denial: Denial) -> Response:
        # no WWW-Authenticate here: it would make the browser pop up its own sign-in dialog
        return respond(connection, denial.status, denial.reason + "\n", "text/plain; charset=utf-8")


def _who(grant: Grant, expires_at: float | None) -> dict[str, Any]:
    return {"identity": grant.identity, "name": grant.name, "role": grant.role, "expires_at": expires_at}


def anchors_from_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Group :meth:`EvidenceIndex.anchor_record` rows per anchor with totals and a confirmed rate."""
    anchors: dict[str | None, dict[str, Any]] = {}
    for row in rows:
        entry = anchors.setdefault(
            row["anchor_id"],
            {"anchor_id": row["anchor_id"], "alerts": 0, "confirmed": 0, "dismissed": 0, "inspected": 0,
             "series": []},
        )
        for key in ("alerts", "confirmed", "dismissed", "inspected"):
            entry[key] += row[key]
        entry["series"].append({k: row[k] for k in ("bucket", "alerts", "confirmed", "dismissed", "inspected")})
    for entry in anchors.values():
        decided = entry["confirmed"] + entry["dismissed"]
        entry["undecided"] = entry["alerts"] - decided - entry["inspected"]
        entry["confirmed_share_of_decided"] = round(entry["confirmed"] / decided, 4) if decided else None
    return sorted(anchors.values(), key=lambda a: (-a["confirmed"], -a["alerts"], str(a["anchor_id"])))

