"""Room timelines: the pure ordering with exact inputs, and the route over an archived and a live session."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from monitor.server.timeline import SessionView, timeline_items
from tests.server.moderation_support import ArchiveServer, make_alert


def _report(stream_time: float | None, session_id: str | None, name: str) -> dict[str, Any]:
    return {"report_id": name, "session_id": session_id, "stream_time": stream_time, "received_at": "z"}


def test_items_interleave_by_session_then_stream_time() -> None:
    old = SessionView(
        session_id="s1", started_at="2026-01-01T08:00:00.000000Z", live=False,
        utterances=[{"start": 0.0, "end": 2.0, "text": "a"}, {"start": 5.0, "end": 7.0, "text": "b"}],
        alerts=[{"alert_id": "x", "start": 5.0, "end": 7.0}],
        reports=[_report(6.0, "s1", "r1"), _report(1.0, "s1", "r0")],
    )
    live = SessionView(
        session_id="s2", started_at="2026-01-01T09:00:00.000000Z", live=True,
        utterances=[{"start": 0.5, "end": 1.0, "text": "c"}], alerts=[{"alert_id": "y", "start": 0.5, "end": 1.0}],
    )
    loose = SessionView(session_id=None, started_at="2026-01-01T08:30:00.000000Z", live=False,
                        reports=[_report(None, None, "r-loose")])
    items, truncated = timeline_items([live, old, loose], since_s=None, until_s=None, limit=100)
    names = [i.get("text") or i.get("alert_id") or i.get("report_id") for i in items]
    assert names == ["a", "r0", "b", "x", "r1", "r-loose", "c", "y"] and not truncated
    assert [i["type"] for i in items[:4]] == ["utterance", "report", "utterance", "alert"]
    assert {i["session_id"] for i in items} == {"s1", "s2", None}
    window, _ = timeline_items([live, old, loose], since_s=1.0, until_s=5.5, limit=100)
    assert [i.get("text") or i.get("alert_id") or i.get("report_id") for i in window] == ["r0", "b", "x"]
    latest, truncated = timeline_items([live, old, loose], since_s=None, until_s=None, limit=2)
    assert [i.get("text") or i.get("alert_id") for i in latest] == ["c", "y"] and truncated
    first, truncated = timeline_items([live, old], since_s=0.0, until_s=None, limit=2)
    assert [i.get("text") or i.get("report_id") for i in first] == ["a", "r0"] and truncated


@pytest.fixture
def served(tmp_path: Any) -> Iterator[ArchiveServer]:
    server = ArchiveServer(tmp_path / "archive")
    yield server
    server.close()


def test_timeline_route_across_a_finished_and_a_live_session(served: ArchiveServer) -> None:
    began = datetime.now(UTC) - timedelta(minutes=30)
    old_alert = make_alert(4.0)
    served.archived_session(
        "s-old", alerts=[old_alert], started_at=began,
        transcript=[{"start": 4.0, "end": 6.0, "text": "这个枕头可以治疗失眠", "heard": "这个枕头可以治了失眠"},
                    {"start": 9.0, "end": 10.0, "text": "上链接"}],
    )
    served.request("/v1/reports", method="POST", token="ingest-token",
                   body={"room_id": "room-a", "viewer_id": "v1", "stream_time": 5.0, "reason": "说能治病"})
    live = served.live_session("s-live", stream_time=3.0, transcript=[{"start": 1.0, "end": 2.5, "text": "足金的"}])
    served.send_alerts(live, [make_alert(1.0, category="precious_metal_claim")])
    served.request("/v1/reports", method="POST", token="ingest-token",
                   body={"room_id": "room-a", "viewer_id": "v2", "reason": "刚才那句"})  # at the live time, 3.0

    status, answer = served.json("/v1/rooms/room-a/timeline")
    assert status == 200 and answer["room_id"] == "room-a" and not answer["truncated"]
    assert [(s["session_id"], s["live"]) for s in answer["sessions"]] == [("s-old", False), ("s-live", True)]
    shape = [(i["type"], i["session_id"], i.get("start", i.get("stream_time"))) for i in answer["items"]]
    assert shape == [
        ("utterance", "s-old", 4.0), ("alert", "s-old", 4.0), ("report", "s-old", 5.0), ("utterance", "s-old", 9.0),
        ("utterance", "s-live", 1.0), ("alert", "s-live", 1.0), ("report", "s-live", 3.0),
    ]
    utterance, alert, report = answer["items"][:3]
    assert utterance["heard"] == "这个枕头可以治了失眠"  # the rescored utterance keeps what was heard
    assert alert["evidence_id"] == old_alert.evidence_id and "explanation" in alert
    assert report["reason"] == "说能治病" and report["placed"] == "stream_time"
    assert answer["items"][-1]["placed"] == "live"

    status, live_only = served.json("/v1/rooms/room-a/timeline?since_s=2&session_id=s-live")
    assert [i["type"] for i in live_only["items"]] == ["report"]
    assert served.json("/v1/rooms/room-b/timeline?session_id=s-live")[1]["items"] == []  # not another room's
    assert served.json("/v1/rooms/room-a/timeline", token="inspector-token")[0] == 200
    for token in ("ingest-token", "anchor-a-token"):
        assert served.json("/v1/rooms/room-a/timeline", token=token)[0] == 403
    assert served.request("/v1/rooms/room-a/timeline")[0] == 401
    status, bad = served.json("/v1/rooms/room-a/timeline?limit=0")
    assert status == 400 and bad["fields"] == ["limit"]
    openapi = json.loads(served.request("/openapi.json")[2])["paths"]
    for path in ("/v1/reports", "/v1/rooms/{room_id}/timeline", "/v1/reports/undetected",
                 "/v1/reports/undetected.jsonl", "/v1/inspections", "/v1/inspections/{ticket_id}",
                 "/v1/inspections/{ticket_id}/outcome"):
        assert path in openapi, path
    assert {"202", "400", "401", "403", "503"} <= set(openapi["/v1/reports"]["post"]["responses"])


def test_timeline_shows_archived_alerts_whose_session_has_not_ended(served: ArchiveServer) -> None:
    """Alerts in the archive with no session record yet (the session runs on, elsewhere or not at all
    in this process) are on the timeline; a live session's alerts are not listed twice."""
    pending = [make_alert(312.4, room="room-b", anchor="anchor-2"),
               make_alert(312.4, room="room-b", anchor="anchor-2", category="precious_metal_claim")]
    for alert in pending:
        alert.evidence_id = served.archive.record_alert(alert, clip=None, clip_start=None, transcript=alert.text)
    status, answer = served.json("/v1/rooms/room-b/timeline?since_s=282.4&until_s=345.9")
    assert status == 200 and answer["sessions"] == []
    assert [(i["type"], i["session_id"], i["evidence_id"]) for i in answer["items"]] == [
        ("alert", None, pending[0].evidence_id), ("alert", None, pending[1].evidence_id)]
    assert answer["items"][1]["category"] == "precious_metal_claim"
    assert served.json("/v1/rooms/room-b/timeline?since_s=400")[1]["items"] == []

    # a live session here: its alerts come once (from the session), the room-b ones stay in their own room
    live = served.live_session("s-live", room="room-a")
    served.send_alerts(live, [make_alert(2.0)])
    items = served.json("/v1/rooms/room-a/timeline")[1]["items"]
    assert [(i["type"], i["session_id"]) for i in items] == [("alert", "s-live")]
    # once the session is archived its record covers the alert: still once, now under the session
    served.end_session(live)
    served.archive.record_session(session_id="s-live", room_id="room-a", anchor_id="anchor-1", transcript=[],
                                  started_at=live.started_at, ended_at=datetime.now(UTC))
    items = served.json("/v1/rooms/room-a/timeline")[1]["items"]
    assert [(i["type"], i["session_id"]) for i in items] == [("alert", "s-live")]
