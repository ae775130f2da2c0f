"""A room's timeline: its utterances, alerts and viewer reports in stream-time order.

The pieces come from two places: the live session in memory (its transcript, the alerts it
sent, kept in :class:`LiveAlerts`) and the evidence archive for finished sessions (session
transcript records, the alert records they cover, report records). :class:`RoomHistory`
reads the archive (call it in a thread); :func:`timeline_items` orders and bounds what was
read (pure)::

    views = [live_view(session, live_alerts)] + history.archived_views(room_id, ...)
    items, truncated = timeline_items(views, since_s=12.0, until_s=None, limit=500)

Stream time restarts with each session (a stream started without ``seq`` begins at 0), so
items are ordered by session (when it started), then by stream seconds within it; every
item names its ``session_id``. A report not placed in any session (the room was not live
and ``stream_time`` was not given) is its own group, at the time it was received. Archived alerts
that no session record covers and no live session here holds (the session has not ended, or runs
on another gateway, or was lost in a crash) are one more group (``session_id`` null), at the time
of the first of them.

The same reads decide which reports no alert explains (:meth:`RoomHistory.undetected`):
a report with no alert of its session within :data:`DETECTION_WINDOW_S` of its stream time.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from monitor.archive.records import iso_utc
from monitor.errors import ArchiveError

if TYPE_CHECKING:
    from monitor.archive import EvidenceArchive
    from monitor.server.session import RoomSession

log = logging.getLogger(__name__)

DETECTION_WINDOW_S = 30.0
"""A viewer report is explained by an alert of its session whose utterance lies within this many
stream seconds of the report's stream time; otherwise it is a detector miss ("reported, not detected")."""

UTTERANCE_CONTEXT_S = 30.0
"""Utterances within this many stream seconds of an undetected report go with it in the JSONL export."""

MAX_LIVE_ALERTS_PER_SESSION = 10_000
"""Alerts a live session keeps in memory for its timeline (the archive holds them all)."""

TIMELINE_DEFAULT_ITEMS = 500
TIMELINE_MAX_ITEMS = 5000
"""Bounds of one timeline answer (``limit``)."""

TIMELINE_MAX_SESSIONS = 20
"""Archived sessions of a room one timeline reads (the latest ones)."""

MAX_SESSIONLESS_REPORTS = 1000
"""Reports placed in no session that one timeline reads (the latest ones)."""

MAX_UNCOVERED_ALERTS = 1000
"""Archived alerts of a room that no session record covers (nor a live session holds) that one
timeline reads (the latest ones)."""

_ORDER = {"utterance": 0, "alert": 1, "report": 2}


def _typed(kind: str, fields: dict[str, Any]) -> dict[str, Any]:
    """A timeline item: ``type`` first. (Built without a ``{"type": ...}`` literal on purpose:
    these are HTTP answers, not websocket frames, which tests/test_asyncapi.py collects.)"""
    item: dict[str, Any] = dict(type=kind)
    item.update(fields)
    return item


@dataclass
class SessionView:
    """One session's material for a timeline: ``started_at`` UTC ISO, ``utterances`` as in the
    session transcript (``start``, ``end``, ``text``, ``heard``), ``alerts`` in wire form,
    ``reports`` as :func:`report_view` gives them. ``session_id`` None: reports placed in no session."""

    session_id: str | None
    started_at: str
    live: bool
    room_id: str | None = None
    anchor_id: str | None = None
    utterances: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    reports: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"session_id": self.session_id, "started_at": self.started_at, "live": self.live,
                "anchor_id": self.anchor_id}


class LiveAlerts:
    """The alerts each live session has sent (bounded), for timelines and the undetected queue.
    Event-loop only: :meth:`add` when a session sends alerts, :meth:`forget` when it is archived."""

    def __init__(self, max_per_session: int = MAX_LIVE_ALERTS_PER_SESSION) -> None:
        self._alerts: dict[str, deque[dict[str, Any]]] = {}
        self._max = max_per_session

    def add(self, session_id: str, alerts: Iterable[dict[str, Any]]) -> None:
        self._alerts.setdefault(session_id, deque(maxlen=self._max)).extend(alerts)

    def of(self, session_id: str) -> list[dict[str, Any]]:
        return list(self._alerts.get(session_id, ()))

    def forget(self, session_id: str) -> None:
        self._alerts.pop(session_id, None)


def live_view(session: RoomSession, alerts: LiveAlerts) -> SessionView:
    """A snapshot of a live session (on the event loop: copies of its lists)."""
    return SessionView(
        session_id=session.session_id, started_at=iso_utc(session.started_at), live=True,
        room_id=session.room_id, anchor_id=session.anchor_id, utterances=list(session.transcript),
        alerts=alerts.of(session.session_id),
    )


def report_view(row: dict[str, Any], content: dict[str, Any] | None) -> dict[str, Any]:
    """A report as the API shows it: an index row of :meth:`EvidenceIndex.reports` and its stored
    part (``reason``, ``viewer_id``; None once purged)."""
    return {
        "report_id": row["report_id"],
        "room_id": row["room_id"],
        "anchor_id": row["anchor_id"],
        "session_id": row["session_id"],
        "stream_time": row["stream_time"],
        "placed": row["placed"],
        "reported_at": row["reported_at"],
        "received_at": row["recorded_at"],
        "category": row["category"],
        "reason": content.get("reason") if content else None,
        "viewer_id": content.get("viewer_id") if content else None,
    }


def _item_time(item: dict[str, Any]) -> float | None:
    return item.get("stream_time") if item["type"] == "report" else item.get("start")


def timeline_items(
    views: Iterable[SessionView], *, since_s: float | None, until_s: float | None, limit: int
) -> tuple[list[dict[str, Any]], bool]:
    """The items of ``views`` in order (session start, then stream seconds, then utterance before
    alert before report), those with stream time in [``since_s``, ``until_s``] when given; at most
    ``limit``: the first ones when ``since_s`` is given (read on from there), else the latest.
    Returns the items and whether some were left out."""
    keyed: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    for group, view in enumerate(sorted(views, key=lambda v: v.started_at)):
        items = [_typed("utterance", {"session_id": view.session_id, **u}) for u in view.utterances]
        items += [_typed("alert", {"session_id": view.session_id, **a}) for a in view.alerts]
        items += [_typed("report", r) for r in view.reports]
        for item in items:
            moment = _item_time(item)
            if moment is None and (since_s is not None or until_s is not None):
                continue
            if moment is not None and (
                (since_s is not None and moment < since_s) or (until_s is not None and moment > until_s)
            ):
                continue
            order = _ORDER[item["type"]]
            keyed.append(((group, moment if moment is not None else 0.0, order, item.get("end") or 0.0), item))
    keyed.sort(key=lambda pair: pair[0])
    ordered = [item for _, item in keyed]
    if len(ordered) <= limit:
        return ordered, False
    return (ordered[:limit] if since_s is not None else ordered[-limit:]), True


def explained(stream_time: float | None, alerts: Iterable[dict[str, Any]]) -> bool:
    """Whether an alert's utterance lies within :data:`DETECTION_WINDOW_S` of ``stream_time``."""
    if stream_time is None:
        return False
    for alert in alerts:
        start, end = alert.get("start"), alert.get("end")
        if start is None:
            continue
        if start - DETECTION_WINDOW_S <= stream_time <= (end if end is not None else start) + DETECTION_WINDOW_S:
            return True
    return False


def utterances_near(stream_time: float | None, utterances: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The utterances within :data:`UTTERANCE_CONTEXT_S` of ``stream_time`` (none without one)."""
    if stream_time is None:
        return []
    return [
        u for u in utterances
        if u["end"] >= stream_time - UTTERANCE_CONTEXT_S and u["start"] <= stream_time + UTTERANCE_CONTEXT_S
    ]


class RoomHistory:
    """Archive reads for timelines and the undetected queue (blocking: call in a thread).

    ``live``: the live sessions' snapshots by ``session_id`` (taken on the event loop), which
    take precedence over the archive (a live session has no session record yet)."""

    def __init__(self, archive: EvidenceArchive, live: dict[str, SessionView] | None = None) -> None:
        self._archive = archive
        self._live = live or {}
        self._sessions: dict[str, SessionView | None] = {}

    # -- stored parts ----------------------------------------------------------------------------
    def _json_part(self, evidence_id: str, role: str) -> Any:
        try:
            return json.loads(self._archive.read_part(evidence_id, role))
        except ArchiveError as exc:
            if "purged" not in str(exc):
                log.error("timeline: %s of evidence %s unreadable: %s", role, evidence_id, exc)
            return None

    def reports_of(self, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Index rows of reports with their stored reason and viewer."""
        return [report_view(row, self._json_part(row["report_id"], "report")) for row in rows]

    def _alerts(self, session_record_id: str) -> list[dict[str, Any]]:
        alerts = []
        for summary in self._archive.reader.session_alerts(session_record_id):
            alert = self._json_part(summary.evidence_id, "alert")
            if alert is not None:
                alerts.append({**alert, "evidence_id": summary.evidence_id})
        return alerts

    def session(self, session_id: str) -> SessionView | None:
        """A session's utterances and alerts: the live one's, else the archived record's (None when
        neither holds it: a session lost in a crash). Reports are not read here."""
        if session_id in self._live:
            return self._live[session_id]
        if session_id not in self._sessions:
            record = self._archive.reader.session_record(session_id)
            self._sessions[session_id] = None if record is None else self._archived(record)
        return self._sessions[session_id]

    def _archived(self, record: Any) -> SessionView:
        transcript = self._json_part(record.evidence_id, "transcript")
        return SessionView(
            session_id=record.session_id, started_at=record.event_time or record.recorded_at, live=False,
            room_id=record.room_id, anchor_id=record.anchor_id,
            utterances=transcript if isinstance(transcript, list) else [], alerts=self._alerts(record.evidence_id),
        )

    # -- a room's timeline -----------------------------------------------------------------------
    def room_views(self, room_id: str, *, session_id: str | None = None) -> list[SessionView]:
        """The room's sessions (the latest :data:`TIMELINE_MAX_SESSIONS` archived ones and the live
        ones), each with its reports, plus the reports placed in no session; only ``session_id``'s
        when given."""
        views: list[SessionView] = []
        if session_id is not None:
            found = self.session(session_id)
            if found is not None and found.room_id == room_id:
                views.append(found)
        else:
            views.extend(v for v in self._live.values() if v.room_id == room_id)
            for record in self._archive.reader.latest_sessions(room_id, TIMELINE_MAX_SESSIONS):
                if record.session_id not in self._live:
                    views.append(self._archived(record))
        for view in views:
            assert view.session_id is not None
            view.reports = self.reports_of(self._archive.reports(session_id=view.session_id))
        if session_id is None:
            pending = self.unsessioned_view(room_id, views)
            if pending is not None:
                views.append(pending)
            loose = self.reports_of(
                self._archive.reports(room_id=room_id, sessionless=True, limit=MAX_SESSIONLESS_REPORTS)
            )
            for report in loose:
                views.append(SessionView(session_id=None, started_at=report["received_at"], live=False,
                                         room_id=room_id, anchor_id=report["anchor_id"], reports=[report]))
        return views

    def unsessioned_view(self, room_id: str, views: Iterable[SessionView]) -> SessionView | None:
        """The room's archived alerts that no session record covers and no live view holds: those of
        a session not ended (or archived) yet that this process does not hold (another gateway's,
        or alerts archived without a live session), and those of a session lost in a crash. One
        group (``session_id`` None) at the time of its first alert; None when there are none."""
        held = {a.get("evidence_id") for v in views for a in v.alerts}
        ids = [i for i in self._archive.reader.uncovered_alerts(room_id) if i not in held][-MAX_UNCOVERED_ALERTS:]
        alerts: list[dict[str, Any]] = []
        first: str | None = None
        anchor: str | None = None
        for evidence_id in ids:
            alert = self._json_part(evidence_id, "alert")
            if alert is None:
                continue
            alerts.append({**alert, "evidence_id": evidence_id})
            summary = self._archive.reader.require(evidence_id) if first is None else None
            if summary is not None:
                first = summary.event_time or summary.recorded_at
                anchor = summary.anchor_id
        if not alerts or first is None:
            return None
        return SessionView(session_id=None, started_at=first, live=False, room_id=room_id, anchor_id=anchor,
                           alerts=alerts)

    # -- reported, not detected ----------------------------------------------------------------
    def undetected(self, *, room_id: str | None, limit: int, scan: int) -> list[dict[str, Any]]:
        """Reports (newest first, of the latest ``scan``) with no alert of their session within
        :data:`DETECTION_WINDOW_S` of their stream time, at most ``limit``; each with the
        ``utterances`` of its session within :data:`UTTERANCE_CONTEXT_S` of it."""
        found = []
        for row in self._archive.reports(room_id=room_id, limit=scan):
            view = self.session(row["session_id"]) if row["session_id"] else None
            if explained(row["stream_time"], view.alerts if view else ()):
                continue
            report = report_view(row, self._json_part(row["report_id"], "report"))
            report["utterances"] = utterances_near(row["stream_time"], view.utterances if view else ())
            found.append(report)
            if len(found) >= limit:
                break
        return found
