"""Viewer reports, room timelines and the "reported, not detected" queue (REST routes).

=========================================  =================================  ==========================
route                                      who                                what
=========================================  =================================  ==========================
``POST /v1/reports``                       ``ingest``, ``admin``              archive a viewer's report,
                                                                              push it (``include=reports``)
``GET /v1/rooms/{room_id}/timeline``       ``moderator``, ``admin``,          utterances, alerts and
                                           ``inspector``                      reports in stream order
``GET /v1/reports/undetected``             ``moderator``, ``admin``           reports no alert explains
``GET /v1/reports/undetected.jsonl``       ``moderator``, ``admin``           the same as JSONL (lexicon
                                                                              and classifier work)
=========================================  =================================  ==========================

:class:`ReportDesk` places a report on the room's stream axis (docs/PROTOCOL.md, "Viewer
reports"), appends it to the evidence archive (durable before the 202), then hands it to
the hub (subscribers that asked for reports, and webhooks). Archive reads run in a thread;
the timeline's and the queue's logic is in :mod:`monitor.server.timeline`.
"""

# no `from __future__ import annotations`: FastAPI reads the routes' annotations at run time

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import Depends, FastAPI, Path, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.responses import Response

from monitor.archive.records import MAX_REASON_CHARS, iso_utc
from monitor.errors import ArchiveError, ArchiveWriteError
from monitor.server.auth import CONSOLE_ROLES, Grant, api_grant
from monitor.server.responses import Refusal, json_response, respond
from monitor.server.timeline import (
    DETECTION_WINDOW_S,
    TIMELINE_DEFAULT_ITEMS,
    TIMELINE_MAX_ITEMS,
    RoomHistory,
    SessionView,
    live_view,
    report_view,
    timeline_items,
)
from monitor.taxonomy import Category

if TYPE_CHECKING:
    from monitor.archive import EvidenceArchive
    from monitor.server.app import MonitorServer

log = logging.getLogger(__name__)

REPORT_ROLES = frozenset({"ingest", "admin"})
"""Roles that may relay viewers' reports (the platform's gateway)."""

TIMELINE_ROLES = frozenset({"moderator", "admin", "inspector"})
"""Roles that may read a room's timeline."""

UNDETECTED_DEFAULT = 100
UNDETECTED_MAX = 1000
"""Bounds of ``GET /v1/reports/undetected`` (``limit``)."""

UNDETECTED_EXPORT_MAX = 10_000
"""Reports one JSONL export holds at most."""

UNDETECTED_SCAN_REPORTS = 20_000
"""The latest reports the queue looks through (each checked against its session's alerts)."""

MAX_STREAM_TIME_S = 10_000_000.0
"""Largest ``stream_time`` accepted (about 115 days of stream)."""

RoomId = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class ReportRequest(BaseModel):
    """The JSON body of ``POST /v1/reports``: one viewer's report, relayed by the platform."""

    model_config = ConfigDict(extra="forbid")

    room_id: RoomId = Field(description="the reported room")
    viewer_id: str = Field(min_length=1, max_length=128, description="the platform's id of the viewer")
    stream_time: float | None = Field(
        default=None, ge=0, le=MAX_STREAM_TIME_S, allow_inf_nan=False,
        description="stream seconds the report is about; default: the room's current stream time if it is "
        "live, else none (placed at reception)",
    )
    reported_at: datetime | None = Field(
        default=None, description="when the viewer reported it (UTC ISO-8601; default: when it was received)"
    )
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_REASON_CHARS)] = (
        Field(description="what the viewer said")
    )
    category: Category | None = Field(default=None, description="a TAXONOMY.md category the viewer chose")


class ReportAccepted(BaseModel):
    """The answer to ``POST /v1/reports`` (202)."""

    report_id: str = Field(description="the report's archive id (32 hex digits)")
    room_id: str
    session_id: str | None = Field(description="the room session it was placed in, if any")
    stream_time: float | None = Field(description="where it was placed, in that session's stream seconds")
    placed: Literal["stream_time", "live", "received"] = Field(
        description="stream_time: as reported; live: at the room's stream time on arrival; received: not on "
        "any stream (room not live, no stream_time)"
    )


class TimelineAnswer(BaseModel):
    """``GET /v1/rooms/{room_id}/timeline``: ``items`` of ``type`` utterance, alert or report."""

    room_id: str
    sessions: list[dict[str, Any]] = Field(description="the sessions the items come from, oldest first")
    items: list[dict[str, Any]] = Field(description="in session order, then stream-time order")
    truncated: bool = Field(description="more items matched than limit")


class UndetectedAnswer(BaseModel):
    """``GET /v1/reports/undetected``: reports no alert of their session explains, newest first."""

    window_s: float = Field(description="an alert within this many stream seconds explains a report")
    reports: list[dict[str, Any]]


def require_role(grant: Grant, roles: frozenset[str], what: str) -> None:
    """403 (JSON) unless ``grant``'s role is one of ``roles``."""
    if grant.role not in roles:
        raise Refusal(403, f"role {grant.role!r} may not {what}; needs one of {sorted(roles)}",
                      code="forbidden", as_json=True)


def open_archive(server: "MonitorServer") -> "EvidenceArchive":
    """The server's open archive, else a JSON 503 naming why not."""
    resources = server.resources
    if resources is None:
        raise Refusal(503, "not ready: models loading", code="unavailable", as_json=True)
    try:
        return resources.evidence.require()
    except ArchiveError as exc:
        raise Refusal(503, str(exc), code="unavailable", as_json=True) from exc


async def in_thread(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """An archive read or write in a thread; an archive failure is a JSON 503."""
    try:
        return await asyncio.to_thread(call, *args, **kwargs)
    except ArchiveError as exc:
        raise Refusal(503, str(exc), code="unavailable", as_json=True) from exc


class ReportDesk:
    """Accepts viewer reports (module docstring). Event-loop only; archive work in threads."""

    def __init__(self, server: "MonitorServer") -> None:
        self._server = server

    async def submit(self, grant: Grant, request: ReportRequest) -> dict[str, Any]:
        """Place, archive and publish ``request``; the published report (``report_id`` set)."""
        require_role(grant, REPORT_ROLES, "relay viewer reports")
        if not grant.may_see(request.room_id):
            raise Refusal(403, f"token is not scoped to room {request.room_id!r}", code="forbidden", as_json=True)
        server = self._server
        archive = open_archive(server)
        received = datetime.now(UTC)
        live = server.live_session(request.room_id)
        stream_time = request.stream_time
        session_id = anchor_id = None
        if live is not None:
            session_id, anchor_id = live.session_id, live.anchor_id
            placed = "stream_time" if stream_time is not None else "live"
            if stream_time is None:
                stream_time = round(live.stream_time_s, 3)
        else:
            latest = await in_thread(archive.reader.latest_sessions, request.room_id, 1)
            anchor_id = latest[-1].anchor_id if latest else None
            if stream_time is not None and latest:
                session_id = latest[-1].session_id  # the room's last stream: what a late report is about
            placed = "stream_time" if stream_time is not None else "received"
        reported_at = request.reported_at or received
        if reported_at.tzinfo is None:
            reported_at = reported_at.replace(tzinfo=UTC)
        try:
            report_id = await asyncio.to_thread(
                archive.record_report, room_id=request.room_id, anchor_id=anchor_id, session_id=session_id,
                stream_time=stream_time, placed=placed, reported_at=reported_at, viewer_id=request.viewer_id,
                reason=request.reason, category=request.category.value if request.category else None,
            )
        except (ArchiveError, ArchiveWriteError, OSError) as exc:
            server.metrics.archive_errors.inc()
            raise Refusal(503, f"report not stored: {exc}", code="unavailable", as_json=True) from exc
        server.metrics.archive_writes.inc()
        row = {
            "report_id": report_id, "room_id": request.room_id, "anchor_id": anchor_id, "session_id": session_id,
            "stream_time": stream_time, "placed": placed, "reported_at": iso_utc(reported_at),
            "recorded_at": iso_utc(received), "category": request.category.value if request.category else None,
        }
        report = report_view(row, {"reason": request.reason, "viewer_id": request.viewer_id})
        log.info("viewer report %s on room %s (%s)", report_id, request.room_id, placed)
        server.hub.publish_event({"type": "report", **report})
        return report


def _live_views(server: "MonitorServer") -> dict[str, SessionView]:
    """Snapshots of every live session (event loop), by session id."""
    return {s.session_id: live_view(s, server.live_alerts) for s in server.live_sessions()}


def add_report_routes(app: FastAPI, server: "MonitorServer") -> None:
    """The routes of the module docstring, on ``app``."""
    desk = server.reports
    granted = Annotated[Grant, Depends(api_grant(server.settings.tokens, server.sessions))]
    auth_answers: dict[int | str, dict[str, Any]] = {
        401: {"description": "no or unknown token or console session (WWW-Authenticate: Bearer)"},
        403: {"description": "role, or a room outside the token's scope"},
        503: {"description": "models loading, or the evidence archive unavailable"},
    }

    @app.post(
        "/v1/reports", status_code=202, tags=["reports"], response_model=ReportAccepted,
        summary="Relay a viewer's report of a room (archived, pushed with include=reports, sent to webhooks)",
        responses={
            202: {"description": "archived; the report's id and where it was placed"},
            400: {"description": "a bad field, named in `fields`"},
            **auth_answers,
        },
    )
    async def post_report(who: granted, body: ReportRequest) -> Response:
        report = await desk.submit(who, body)
        return json_response(202, {k: report[k] for k in ReportAccepted.model_fields})

    @app.get(
        "/v1/rooms/{room_id}/timeline", tags=["reports"], response_model=TimelineAnswer,
        summary="A room's utterances, alerts and viewer reports in stream-time order (live and archived sessions)",
        responses={200: {"description": "the timeline"}, 400: {"description": "a bad parameter"}, **auth_answers},
    )
    async def timeline(
        who: granted,
        room_id: Annotated[str, Path(min_length=1, max_length=128)],
        since_s: Annotated[float | None, Query(ge=0, description="only items at or after this stream second")] = None,
        until_s: Annotated[float | None, Query(ge=0, description="only items at or before this stream second")] = None,
        session_id: Annotated[str | None, Query(max_length=64, description="only this session's items")] = None,
        limit: Annotated[int, Query(ge=1, le=TIMELINE_MAX_ITEMS)] = TIMELINE_DEFAULT_ITEMS,
    ) -> Response:
        require_role(who, TIMELINE_ROLES, "read room timelines")
        if not who.may_see(room_id):
            raise Refusal(403, f"token is not scoped to room {room_id!r}", code="forbidden", as_json=True)
        archive = open_archive(server)
        history = RoomHistory(archive, _live_views(server))
        views = await in_thread(history.room_views, room_id, session_id=session_id)
        items, truncated = timeline_items(views, since_s=since_s, until_s=until_s, limit=limit)
        sessions = [v.summary() for v in sorted(views, key=lambda v: v.started_at) if v.session_id is not None]
        return json_response(200, {"room_id": room_id, "sessions": sessions, "items": items, "truncated": truncated})

    async def undetected_reports(who: Grant, room: str | None, limit: int) -> list[dict[str, Any]]:
        require_role(who, CONSOLE_ROLES, "read the reported-not-detected queue")
        archive = open_archive(server)
        history = RoomHistory(archive, _live_views(server))
        found: list[dict[str, Any]] = await in_thread(
            history.undetected, room_id=room, limit=limit, scan=UNDETECTED_SCAN_REPORTS
        )
        return [r for r in found if who.may_see(r["room_id"])]

    room_filter = Annotated[str | None, Query(max_length=128, description="only this room's reports")]

    @app.get(
        "/v1/reports/undetected", tags=["reports"], response_model=UndetectedAnswer,
        summary="Reported, not detected: viewer reports with no alert of their session within window_s",
        responses={200: {"description": "newest first"}, **auth_answers},
    )
    async def undetected(
        who: granted, room: room_filter = None,
        limit: Annotated[int, Query(ge=1, le=UNDETECTED_MAX)] = UNDETECTED_DEFAULT,
    ) -> Response:
        reports = await undetected_reports(who, room, limit)
        return json_response(200, {"window_s": DETECTION_WINDOW_S, "reports": reports})

    @app.get(
        "/v1/reports/undetected.jsonl", tags=["reports"], response_class=Response,
        summary="The undetected reports as JSONL with the utterances around each (lexicon and classifier work)",
        responses={200: {"content": {"application/x-ndjson": {}}}, **auth_answers},
    )
    async def undetected_export(
        who: granted, room: room_filter = None,
        limit: Annotated[int, Query(ge=1, le=UNDETECTED_EXPORT_MAX)] = UNDETECTED_EXPORT_MAX,
    ) -> Response:
        reports = await undetected_reports(who, room, limit)
        keys = ("report_id", "room_id", "anchor_id", "session_id", "stream_time", "placed", "reported_at",
                "category", "reason", "utterances")  # the viewer's id stays out of training data
        body = "".join(json.dumps({k: r[k] for k in keys}, ensure_ascii=False) + "\n" for r in reports)
        return respond(200, body, "application/x-ndjson; charset=utf-8",
                       {"Content-Disposition": 'attachment; filename="undetected_reports.jsonl"'})

