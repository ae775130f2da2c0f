"""Inspection tickets on a loopback server with a real archive: opened by info purity/gem claims,
grouped per product, outcomes recorded, archived, verified, on the anchor record; roles."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from monitor.archive import verify_archive
from monitor.room import RoomContext
from tests.server.moderation_support import ArchiveServer, make_alert


@pytest.fixture
def served(tmp_path: Any) -> Iterator[ArchiveServer]:
    server = ArchiveServer(tmp_path / "archive")
    yield server
    server.close()


def _claim(start: float, category: str = "precious_metal_claim", severity: str = "info") -> Any:
    return make_alert(start, category=category, severity=severity, text=f"这个手镯是足金的 {start}")


def _wait_for_tickets(served: ArchiveServer, count: int) -> list[dict[str, Any]]:
    import time

    deadline = time.monotonic() + 10
    while True:
        status, answer = served.json("/v1/inspections", token="inspector-token")
        assert status == 200
        if sum(t["claims"] for t in answer["inspections"]) >= count or time.monotonic() > deadline:
            return list(answer["inspections"])
        time.sleep(0.05)


def test_certified_purity_claims_open_one_ticket_per_product_and_an_outcome_closes_it(served: ArchiveServer) -> None:
    context = RoomContext(category="jewelry", product="足金手镯", certified=["足金"])
    session = served.live_session("s-1", context=context)
    # the certified claim (lowered to info) twice, a warning claim and another category: only the two count
    served.send_alerts(session, [_claim(3.0), _claim(30.0), _claim(40.0, severity="warning"),
                                 _claim(50.0, category="medical_claim")])
    (ticket,) = _wait_for_tickets(served, 2)
    assert ticket["claims"] == 2 and ticket["status"] == "open" and ticket["product"] == "足金手镯"
    assert (ticket["room_id"], ticket["anchor_id"], ticket["room_category"]) == ("room-a", "anchor-1", "jewelry")

    status, view = served.json(f"/v1/inspections/{ticket['ticket_id']}", token="inspector-token")
    assert status == 200 and [c["start"] for c in view["claims"]] == [3.0, 30.0]
    assert view["claims"][0]["text"] == "这个手镯是足金的 3.0" and view["claims"][0]["matched"] == "治疗"
    assert view["claims"][0]["clip_url"].endswith("/clip")
    assert served.request(view["claims"][0]["clip_url"], token="inspector-token")[0] == 404  # this claim has no audio

    body = {"outcome": "inconsistent", "certificate": "NGTC-2026-001", "note": "实测 985‰"}
    for token in ("moderator-token", "ingest-token", "anchor-a-token"):
        assert served.json(f"/v1/inspections/{ticket['ticket_id']}/outcome", token=token, method="POST",
                           body=body)[0] == 403
    assert served.request(f"/v1/inspections/{ticket['ticket_id']}/outcome", method="POST", body=body)[0] == 401
    status, bad = served.json(f"/v1/inspections/{ticket['ticket_id']}/outcome", token="inspector-token",
                              method="POST", body={"outcome": "fine"})
    assert status == 400 and bad["fields"] == ["outcome"]
    assert served.json("/v1/inspections/" + "0" * 32, token="inspector-token")[0] == 404
    status, outcome = served.json(f"/v1/inspections/{ticket['ticket_id']}/outcome", token="inspector-token",
                                  method="POST", body=body)
    assert status == 201 and outcome["by"] == "Inspector Li" and outcome["outcome"] == "inconsistent"
    assert outcome["certificate"] == "NGTC-2026-001" and len(outcome["outcome_id"]) == 32

    assert served.json("/v1/inspections?status=open", token="inspector-token")[1]["inspections"] == []
    status, view = served.json(f"/v1/inspections/{ticket['ticket_id']}", token="moderator-token")
    assert view["status"] == "closed" and view["outcome"] == "inconsistent"
    assert [o["note"] for o in view["outcomes"]] == ["实测 985‰"]
    # a new claim on the same product after the outcome opens a new ticket
    served.send_alerts(session, [_claim(90.0)])
    tickets = _wait_for_tickets(served, 3)
    assert len(tickets) == 2 and tickets[0]["status"] == "open"

    for token in ("ingest-token", "anchor-a-token"):
        assert served.json("/v1/inspections", token=token)[0] == 403
    rows = served.archive.anchor_record(bucket="day")
    assert sum(r["inspections_inconsistent"] for r in rows) == 1 and sum(r["inspections"] for r in rows) == 2
    report = verify_archive(served.data_dir)
    assert report.ok, report.problems
    assert (report.inspection_claims, report.inspection_outcomes) == (3, 1)

    # the anchor record (GET /v1/anchors) carries the viewer reports and the inspection outcomes
    served.request("/v1/reports", method="POST", token="ingest-token",
                   body={"room_id": "room-a", "viewer_id": "v1", "stream_time": 31.0, "reason": "说是足金"})
    status, record = served.json("/v1/anchors?bucket=day")
    assert status == 200
    (anchor,) = [a for a in record["anchors"] if a["anchor_id"] == "anchor-1"]
    assert (anchor["reports"], anchor["inspections"], anchor["inspections_consistent"],
            anchor["inspections_inconsistent"], anchor["inspections_open"]) == (1, 2, 0, 1, 1)
    assert anchor["alerts"] == 5 and sum(s["inspections"] for s in anchor["series"]) == 2
    assert sum(s["reports"] for s in anchor["series"]) == 1


def test_an_inspector_signs_in_to_the_console_and_sees_only_inspections(served: ArchiveServer) -> None:
    status, who = served.json("/console/session", token="inspector-token")
    assert status == 200 and (who["role"], who["identity"]) == ("inspector", "Inspector Li")
    assert served.request("/console/session", token="ingest-token")[0] == 403
    assert served.json("/v1/inspections", token="inspector-token")[0] == 200
    assert served.request("/v1/taxonomy", token="inspector-token")[0] in (200, 404)  # titles, if lexicons are set
    for path in ("/v1/rooms", "/v1/anchors", "/v1/decisions.jsonl", "/v1/claims", "/v1/evidence/" + "0" * 32):
        assert served.request(path, token="inspector-token")[0] == 403, path
