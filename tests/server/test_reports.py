"""Viewer reports on a real loopback server with a real archive: validation, roles, placement,
the archive (verify), the include=reports push, and the reported-not-detected queue and its JSONL."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from websockets.asyncio.client import connect

from monitor.archive import verify_archive
from monitor.server.timeline import DETECTION_WINDOW_S
from tests.server.conftest import auth
from tests.server.moderation_support import ArchiveServer, make_alert

REPORT = {"room_id": "room-a", "viewer_id": "viewer-1", "reason": "主播说枕头能治失眠"}


@pytest.fixture
def served(tmp_path: Any) -> Iterator[ArchiveServer]:
    server = ArchiveServer(tmp_path / "archive")
    yield server
    server.close()


def post(served: ArchiveServer, body: Any, token: str = "ingest-token") -> tuple[int, dict[str, str], Any]:
    status, headers, text = served.request("/v1/reports", method="POST", body=body, token=token)
    return status, headers, json.loads(text) if text else None


def test_a_bad_report_is_400_naming_each_field(served: ArchiveServer) -> None:
    cases = [
        ({"viewer_id": "v", "reason": "x"}, "room_id"),
        ({"room_id": "room-a", "reason": "x"}, "viewer_id"),
        ({"room_id": "room-a", "viewer_id": "v"}, "reason"),
        ({**REPORT, "reason": "   "}, "reason"),
        ({**REPORT, "reason": "x" * 1001}, "reason"),
        ({**REPORT, "stream_time": -1}, "stream_time"),
        ({**REPORT, "stream_time": "soon"}, "stream_time"),
        ({**REPORT, "reported_at": "yesterday"}, "reported_at"),
        ({**REPORT, "category": "gossip"}, "category"),
        ({**REPORT, "room_id": ""}, "room_id"),
        ({**REPORT, "viewer": "v"}, "viewer"),
    ]
    for body, field in cases:
        status, headers, answer = post(served, body)
        assert status == 400 and headers["content-type"].startswith("application/json"), (body, answer)
        assert answer["error"] == "bad_request" and answer["fields"] == [field], (body, answer)
        assert field in answer["message"]
    status, _, answer = post(served, {"viewer_id": "v", "stream_time": "x", "reason": "x"})  # every bad field
    assert status == 400 and set(answer["fields"]) == {"room_id", "stream_time"}


def test_who_may_report(served: ArchiveServer) -> None:
    status, headers, _ = served.request("/v1/reports", method="POST", body=REPORT)
    assert status == 401 and headers["www-authenticate"] == 'Bearer realm="monitor"'
    assert post(served, REPORT, token="nobody")[0] == 401
    for token in ("moderator-token", "anchor-a-token", "inspector-token"):
        status, _, answer = post(served, REPORT, token=token)
        assert status == 403 and answer["error"] == "forbidden" and "relay viewer reports" in answer["message"]
    status, _, answer = post(served, REPORT, token="ingest-b-token")  # an ingest token of other rooms
    assert status == 403 and "room-a" in answer["message"]
    assert post(served, REPORT, token="ingest-token")[0] == 202
    assert post(served, REPORT, token="admin-token")[0] == 202


def test_a_report_is_placed_archived_verified_and_pushed_to_those_who_asked(served: ArchiveServer) -> None:
    async def scenario() -> tuple[dict[str, Any], list[dict[str, Any]], list[Any]]:
        url = f"ws://127.0.0.1:{served.port}/v1/alerts"
        asking = await connect(url + "?include=reports", additional_headers=auth("moderator-token"))
        other_room = await connect(url + "?include=reports&room=room-b", additional_headers=auth("moderator-token"))
        plain = await connect(url, additional_headers=auth("moderator-token"))
        status, _, accepted = await asyncio.to_thread(post, served, {**REPORT, "category": "medical_claim"})
        assert status == 202
        pushed = json.loads(await asyncio.wait_for(asking.recv(), 10))
        quiet = []
        for ws in (other_room, plain):
            with contextlib.suppress(TimeoutError):
                quiet.append(await asyncio.wait_for(ws.recv(), 0.5))
        for ws in (asking, other_room, plain):
            await ws.close()
        return accepted, [pushed], quiet

    accepted, (pushed,), quiet = asyncio.run(scenario())
    # the room is not live and stream_time was not given: placed at reception, in no session
    assert accepted["placed"] == "received" and accepted["stream_time"] is None and accepted["session_id"] is None
    assert len(accepted["report_id"]) == 32
    assert pushed["type"] == "report" and pushed["report_id"] == accepted["report_id"]
    assert (pushed["reason"], pushed["viewer_id"]) == (REPORT["reason"], "viewer-1")
    assert pushed["category"] == "medical_claim"
    assert quiet == []  # another room's subscriber and one that did not ask get nothing

    # a live room: placed at its stream time, or at the time the viewer gave
    served.live_session("s-live", stream_time=42.5)
    assert post(served, REPORT)[2] | {"report_id": ""} == {
        "report_id": "", "room_id": "room-a", "session_id": "s-live", "stream_time": 42.5, "placed": "live",
    }
    assert post(served, {**REPORT, "stream_time": 12.0})[2]["placed"] == "stream_time"

    report = verify_archive(served.data_dir)
    assert report.ok, report.problems
    assert report.reports == 3
    stored = json.loads(served.archive.read_part(accepted["report_id"], "report"))
    assert stored == {"reason": REPORT["reason"], "viewer_id": "viewer-1"}


def test_reported_not_detected_queue_and_its_jsonl(served: ArchiveServer) -> None:
    started = datetime.now(UTC) - timedelta(hours=1)
    transcript = [
        {"start": 10.0, "end": 12.0, "text": "这个枕头可以治疗失眠"},
        {"start": 95.0, "end": 99.0, "text": "加我微信私下便宜"},
        {"start": 300.0, "end": 302.0, "text": "谢谢大家"},
    ]
    served.archived_session("s-old", alerts=[make_alert(10.0)], transcript=transcript, started_at=started)
    explained = post(served, {**REPORT, "stream_time": 12.0 + DETECTION_WINDOW_S})[2]  # the alert's end + window
    missed = post(
        served, {**REPORT, "stream_time": 100.0, "reason": "主播让加微信", "category": "private_transaction"}
    )[2]
    served.live_session("s-live", stream_time=5.0, transcript=[{"start": 1.0, "end": 3.0, "text": "足金手镯"}])
    live_missed = post(served, {**REPORT, "reason": "说是足金"})[2]
    served.send_alerts(served.server.live_session("room-a"), [make_alert(200.0)])  # too far from 5.0
    assert explained["session_id"] == missed["session_id"] == "s-old"

    status, answer = served.json("/v1/reports/undetected")
    assert status == 200 and answer["window_s"] == DETECTION_WINDOW_S
    assert [r["report_id"] for r in answer["reports"]] == [live_missed["report_id"], missed["report_id"]]
    first = answer["reports"][1]
    assert first["reason"] == "主播让加微信" and first["category"] == "private_transaction"
    assert [u["text"] for u in first["utterances"]] == ["加我微信私下便宜"]  # within 30 s of 100.0
    assert [u["text"] for u in answer["reports"][0]["utterances"]] == ["足金手镯"]  # the live session's

    # an alert near the live report explains it
    served.send_alerts(served.server.live_session("room-a"), [make_alert(20.0)])
    assert [r["report_id"] for r in served.json("/v1/reports/undetected")[1]["reports"]] == [missed["report_id"]]
    assert served.json("/v1/reports/undetected?room=room-b")[1]["reports"] == []

    status, headers, text = served.request("/v1/reports/undetected.jsonl", token="admin-token")
    assert status == 200 and headers["content-type"].startswith("application/x-ndjson")
    (line,) = [json.loads(x) for x in text.splitlines()]
    assert line == {
        "report_id": missed["report_id"], "room_id": "room-a", "anchor_id": "anchor-1", "session_id": "s-old",
        "stream_time": 100.0, "placed": "stream_time", "reported_at": line["reported_at"],
        "category": "private_transaction", "reason": "主播让加微信",
        "utterances": [{"start": 95.0, "end": 99.0, "text": "加我微信私下便宜"}],
    }  # no viewer id in training data
    for token in ("ingest-token", "anchor-a-token", "inspector-token"):
        assert served.request("/v1/reports/undetected", token=token)[0] == 403
        assert served.request("/v1/reports/undetected.jsonl", token=token)[0] == 403
    assert served.request("/v1/reports/undetected")[0] == 401

    # per-anchor report counts on the anchor record
    rows = served.archive.anchor_record(bucket="day")
    assert sum(r["reports"] for r in rows if r["anchor_id"] == "anchor-1") == 3
