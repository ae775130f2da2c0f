"""HTTP routes of the moderator console and the JSON endpoints it reads (added to the FastAPI app).

Routes, all documented in docs/CONSOLE.md:

=====================================  ==========================================
``GET /console``, ``/console/<file>``  the page (static files of ``monitor.console``)
``GET /console/session``               with ``Authorization: Bearer``: sign in, set the cookie;
                                       with the cookie: who is signed in (401 if nobody)
``POST /console/logout``               end the session, clear the cookie
``GET /v1/rooms``                      live rooms, their anchors and alert counts
``GET /v1/evidence/<id>``              one record: alert, transcript, clip facts, proof, decisions
``GET /v1/evidence/<id>/clip``         the archived FLAC clip
``GET /v1/anchors?bucket=day|hour``    per anchor: alerts and decisions over time
``GET /v1/decisions.jsonl``            confirmed and dismissed alerts as labeled JSONL
``GET /v1/taxonomy``                   categories (Chinese titles from lexicons/*.yaml, English
                                       titles), severities, room categories, rule id -> term
=====================================  ==========================================

Everything but the static page needs a bearer token or the console cookie (decided once
per request by :meth:`ConsoleRoutes.grant`); evidence, anchors and decisions need a
``moderator`` or ``admin`` role. A cookie sent from another site's page is refused (403).
Archive reads run in a thread, off the event loop. ``POST /v1/decisions`` is in
:mod:`monitor.server.decisions`.
"""

# no `from __future__ import annotations`: FastAPI reads the routes' annotations at run time,
# including the local aliases below

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from enum import Enum
from functools import cache
from importlib import resources
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Path, Query
from starlette.requests import Request
from starlette.responses import Response

from monitor.config import TokenGrant
from monitor.errors import ArchiveError, LexiconError
from monitor.server.auth import (
    CONSOLE_ROLES,
    SUBSCRIBE_ROLES,
    Denial,
    Grant,
    authenticate,
    authenticate_request,
    same_origin,
)
from monitor.server.console_sessions import ConsoleSessions
from monitor.server.evidence import EvidenceWriter
from monitor.server.responses import Refusal, json_response, respond
from monitor.taxonomy import CATEGORIES, Severity
from monitor.text.lexicon import load_lexicon_file

log = logging.getLogger(__name__)

STATIC_FILES = {
    "index.html": "text/html; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
}
"""The console's files (``monitor/console/static/``) and their media types."""

EVIDENCE_ID_PATTERN = r"^[0-9a-f]{32}$"

SIGN_IN_ROLES = CONSOLE_ROLES | {"inspector"}
"""Roles that may sign in to the console. An ``inspector`` gets the inspection view only: every
other route still checks its own roles (alerts, rooms, evidence, decisions refuse it)."""

ANCHOR_COUNTS = ("alerts", "confirmed", "dismissed", "inspected", "reports", "inspections",
                 "inspections_consistent", "inspections_inconsistent")
"""What ``GET /v1/anchors`` adds up per anchor (and gives per bucket): the archive's anchor rows."""

CATEGORY_TITLES_EN = {
    "absolute_claim": "Absolute claims",
    "medical_claim": "Medical and disease claims",
    "cosmetic_efficacy": "Cosmetic efficacy claims",
    "precious_metal_claim": "Precious-metal purity claims",
    "gem_authenticity_claim": "Gem authenticity and grade claims",
    "collectible_investment": "Collectible and investment value",
    "official_endorsement": "Official or expert endorsement",
    "false_price": "False price and fake urgency",
    "private_transaction": "Off-platform transactions",
    "superstition": "Superstition",
}
"""English titles of the TAXONOMY.md categories; the Chinese ones are each lexicon file's ``title``."""

SEVERITY_TITLES = {"info": ("待核实", "needs verification"), "warning": ("警告", "warning"),
                   "violation": ("违规", "violation")}
"""Severity -> (Chinese, English) names shown in the console."""

ROOM_CATEGORY_TITLES = {
    "jewelry": ("珠宝首饰", "jewelry"), "gold": ("黄金", "gold"), "jade": ("玉石", "jade"), "gems": ("宝石", "gems"),
    "collectibles": ("收藏品", "collectibles"), "antiques": ("古玩", "antiques"), "cosmetics": ("化妆品", "cosmetics"),
    "beauty": ("美容", "beauty"), "food": ("食品", "food"), "health": ("保健", "health"), "tea": ("茶叶", "tea"),
    "supplements": ("营养补充剂", "supplements"),
}
"""Room categories (``context.category`` of a ``start``) the lexicons weigh -> (Chinese, English)."""


@cache
def taxonomy(lexicon_dir: FilePath) -> dict[str, Any]:
    """What ``GET /v1/taxonomy`` answers, read once from the lexicon files of ``lexicon_dir``:
    categories with their Chinese (the file's ``title``) and English titles, regulation and
    room categories; severities; room categories; and each lexicon rule's canonical ``term``,
    so a console can show what a sound-alike (``source: pinyin``) hit stands for."""
    files = {}
    for path in sorted(lexicon_dir.glob("*.yaml")):
        if not path.name.startswith("_"):
            lexicon_file = load_lexicon_file(path)
            files[lexicon_file.category.value] = lexicon_file
    categories: list[dict[str, Any]] = []
    rules: dict[str, dict[str, Any]] = {}
    for category in CATEGORIES:
        found = files.get(category)
        categories.append({
            "id": category,
            "zh": found.title if found else category,
            "en": CATEGORY_TITLES_EN.get(category, category),
            "regulation": found.regulation if found else None,
            "rooms": list(found.rooms) if found else [],
        })
        for entry in found.entries if found else []:
            rules[entry.rule_id] = {"term": entry.term, "category": category, "severity": entry.severity.value}
    known_rooms = {room for c in categories for room in c["rooms"]} | set(ROOM_CATEGORY_TITLES)
    return {
        "categories": categories,
        "severities": [{"id": s.value, "zh": SEVERITY_TITLES[s.value][0], "en": SEVERITY_TITLES[s.value][1]}
                       for s in Severity],
        "room_categories": [
            {"id": room, "zh": ROOM_CATEGORY_TITLES.get(room, (room, room))[0],
             "en": ROOM_CATEGORY_TITLES.get(room, (room, room))[1]}
            for room in sorted(known_rooms)
        ],
        "rules": rules,
    }


def static_file(name: str) -> bytes:
    """The bytes of one console file shipped in the package."""
    return resources.files("monitor.console").joinpath("static", name).read_bytes()


class ConsoleRoutes:
    """The console's HTTP routes over the server's shared parts (see the module docstring)."""

    def __init__(
        self,
        tokens: Mapping[str, TokenGrant],
        sessions: ConsoleSessions,
        evidence: Callable[[], EvidenceWriter | None],
        rooms: Callable[[], list[dict[str, Any]]],
    ) -> None:
        self._tokens = tokens
        self.sessions = sessions
        self._evidence = evidence
        self._rooms = rooms

    # -- who is asking (one decision per request) -------------------------------------------
    def grant(self, request: Request) -> Grant:
        """FastAPI dependency: the request's grant (bearer token or console cookie), else a text refusal.

        No ``WWW-Authenticate`` here: the console page shows the status in its own sign-in box."""
        grant = authenticate_request(self._tokens, request.headers, self.sessions)
        if isinstance(grant, Denial):
            raise Refusal(grant.status, grant.reason)
        return grant

    def _archive(self, grant: Grant) -> EvidenceWriter:
        if grant.role not in CONSOLE_ROLES:
            raise Refusal(403, f"role {grant.role!r} may not read the archive")
        evidence = self._evidence()
        if evidence is None:
            raise Refusal(503, "not ready: models loading")
        return evidence

    # -- routes ------------------------------------------------------------------------------
    def add_routes(
        self,
        app: FastAPI,
        *,
        lexicon_dir: FilePath | None = None,
        room_sessions: Callable[[str], Any] | None = None,
    ) -> None:
        """Add the routes, bound to this object, to ``app`` (flat: ``app.routes`` lists every one).

        ``lexicon_dir``: where ``GET /v1/taxonomy`` reads the category titles and rule terms
        (without it the route answers 404); ``room_sessions``: room id -> its live session, whose
        ``context.category`` ``GET /v1/rooms`` adds to each room as ``category``."""
        tags: list[str | Enum] = ["console"]
        granted = Annotated[Grant, Depends(self.grant)]

        @app.get("/console", tags=tags, response_class=Response, summary="The console page")
        @app.get("/console/", tags=tags, response_class=Response, summary="The console page")
        async def page(request: Request) -> Response:
            return self._static(request, "index.html")

        @app.get("/console/console.js", tags=tags, response_class=Response, summary="The console's script")
        async def script(request: Request) -> Response:
            return self._static(request, "console.js")

        @app.get("/console/console.css", tags=tags, response_class=Response, summary="The console's style sheet")
        async def style(request: Request) -> Response:
            return self._static(request, "console.css")

        @app.get(
            "/console/session", tags=tags,
            summary="Sign in (Authorization: Bearer) or ask who is signed in (cookie)",
            responses={401: {"description": "unknown token, or not signed in"}, 403: {"description": "role"}},
        )
        async def session(request: Request) -> Response:
            return self._session(request)

        @app.post("/console/logout", tags=tags, summary="End the console session and clear its cookie")
        async def logout(request: Request) -> Response:
            if not same_origin(request.headers):
                raise Refusal(403, "sign-out sent from another origin")
            self.sessions.end(request.headers.get("Cookie", ""))
            return json_response(200, {"signed_out": True}, {"Set-Cookie": self.sessions.clearing_cookie()})

        @app.get("/v1/rooms", tags=tags, summary="Live rooms in the token's scope")
        async def rooms(grant: granted) -> Response:
            if grant.role not in SUBSCRIBE_ROLES:
                raise Refusal(403, f"role {grant.role!r} may not watch rooms")
            rooms = [dict(r) for r in self._rooms() if grant.may_see(r["room_id"])]
            for room in rooms:
                if "category" not in room and room_sessions is not None:
                    context = getattr(room_sessions(room["room_id"]), "context", None)
                    room["category"] = getattr(context, "category", None)
            return json_response(200, {"rooms": rooms})

        @app.get("/v1/taxonomy", tags=tags, summary="Categories (Chinese and English titles), severities, rule terms")
        async def taxonomy_view(grant: granted) -> Response:
            if lexicon_dir is None:
                raise Refusal(404, "no lexicons configured")
            try:
                found = await asyncio.to_thread(taxonomy, lexicon_dir)
            except LexiconError as exc:
                raise Refusal(503, str(exc)) from exc
            return json_response(200, found, {"Cache-Control": "private, max-age=300"})

        evidence_id_param = Annotated[str, Path(pattern=EVIDENCE_ID_PATTERN, description="32 hex digits")]

        @app.get("/v1/evidence/{evidence_id}", tags=tags, summary="One archived record with its proof status")
        async def evidence_view(grant: granted, evidence_id: evidence_id_param) -> Response:
            evidence = self._archive(grant)
            view = await self._read(evidence.evidence_view, evidence_id)
            return json_response(200, view)

        @app.get("/v1/evidence/{evidence_id}/clip", tags=tags, summary="The archived FLAC clip")
        async def evidence_clip(grant: granted, evidence_id: evidence_id_param) -> Response:
            evidence = self._archive(grant)
            data = await self._read(evidence.read_clip, evidence_id)
            return respond(
                200, data, "audio/flac", {"Content-Disposition": f'inline; filename="{evidence_id}.flac"'}
            )

        @app.get("/v1/anchors", tags=tags, summary="Per anchor: alerts and decisions over time")
        async def anchors(
            grant: granted,
            bucket: Annotated[Literal["day", "hour"], Query()] = "day",
            since: Annotated[str | None, Query(description="ISO time of the first alert counted")] = None,
        ) -> Response:
            evidence = self._archive(grant)
            rows = await self._read(lambda: evidence.anchor_record(bucket=bucket, since=since))
            return json_response(200, {"bucket": bucket, "anchors": anchors_from_rows(rows)})

        @app.get("/v1/decisions.jsonl", tags=tags, summary="Confirmed and dismissed alerts as labeled JSONL")
        async def decisions_export(grant: granted) -> Response:
            evidence = self._archive(grant)
            examples = await self._read(evidence.labeled_decisions)
            body = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples)
            return respond(
                200, body, "application/x-ndjson; charset=utf-8",
                {"Content-Disposition": 'attachment; filename="decisions.jsonl"'},
            )

    @staticmethod
    async def _read(call: Callable[..., Any], *args: Any) -> Any:
        """An archive read in a thread; an unknown record is 404, an unusable archive 503."""
        try:
            return await asyncio.to_thread(call, *args)
        except ArchiveError as exc:
            raise Refusal(404 if "no evidence with id" in str(exc) else 503, str(exc)) from exc

    def _session(self, request: Request) -> Response:
        if "Authorization" in request.headers:
            grant = authenticate(self._tokens, request.headers)
            if isinstance(grant, Denial):
                raise Refusal(grant.status, grant.reason)
            if grant.role not in SIGN_IN_ROLES:
                raise Refusal(403, f"role {grant.role!r} may not use the console; needs moderator, admin or "
                                   "inspector")
            session_id, expires_at = self.sessions.create(grant)
            log.info("console sign-in: %s (%s)", grant.identity, grant.role)
            return json_response(200, _who(grant, expires_at), {"Set-Cookie": self.sessions.cookie(session_id)})
        found = authenticate_request(self._tokens, request.headers, self.sessions)
        if isinstance(found, Denial):
            raise Refusal(401, "not signed in") if found.status == 401 else Refusal(found.status, found.reason)
        session_id = self.sessions.session_id_from(request.headers.get("Cookie", "")) or ""
        session = self.sessions.get(session_id)
        return json_response(200, _who(found, session.expires_at if session else None))

    @staticmethod
    def _static(request: Request, name: str) -> Response:
        host = request.headers.get("Host", "")
        policy = (
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"media-src 'self' blob:; connect-src 'self' ws://{host} wss://{host}; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )
        return respond(
            200,
            static_file(name),
            STATIC_FILES[name],
            {"Content-Security-Policy": policy, "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"},
        )


def _who(grant: Grant, expires_at: float | None) -> dict[str, Any]:
    return {"identity": grant.identity, "name": grant.name, "role": grant.role, "expires_at": expires_at}


def anchors_from_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Group :meth:`EvidenceIndex.anchor_record` rows per anchor with totals and a confirmed rate.

    Per anchor and per bucket: alerts and the decisions in force (``confirmed``, ``dismissed``,
    ``inspected``), viewer ``reports``, inspection tickets opened (``inspections``) and their outcome
    in force (``inspections_consistent``, ``inspections_inconsistent``; the rest are still open)."""
    anchors: dict[str | None, dict[str, Any]] = {}
    for row in rows:
        entry = anchors.setdefault(
            row["anchor_id"], {"anchor_id": row["anchor_id"], **dict.fromkeys(ANCHOR_COUNTS, 0), "series": []},
        )
        counts = {key: int(row.get(key) or 0) for key in ANCHOR_COUNTS}
        for key, value in counts.items():
            entry[key] += value
        entry["series"].append({"bucket": row["bucket"], **counts})
    for entry in anchors.values():
        decided = entry["confirmed"] + entry["dismissed"]
        entry["undecided"] = entry["alerts"] - decided - entry["inspected"]
        entry["confirmed_share_of_decided"] = round(entry["confirmed"] / decided, 4) if decided else None
        entry["inspections_open"] = (
            entry["inspections"] - entry["inspections_consistent"] - entry["inspections_inconsistent"]
        )
    return sorted(anchors.values(), key=lambda a: (-a["confirmed"], -a["alerts"], str(a["anchor_id"])))
