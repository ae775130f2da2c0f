"""Moderators' decisions in the archive, console sessions and log redaction (no browser, no models)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.archive import EvidenceArchive, verify_archive
from monitor.archive.decisions import export_decisions
from monitor.config import TokenGrant
from monitor.errors import ArchiveError
from monitor.server.auth import Denial, Grant, authenticate, authorize
from monitor.server.console_routes import anchors_from_rows
from monitor.server.console_sessions import ConsoleSessions
from monitor.server.logs import redacting_logger
from tests.archive.conftest import Clock, make_alert, make_clip

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2024, 3, 1, 8, 0, tzinfo=UTC))


@pytest.fixture
def archive_with_alerts(tmp_path: Path, clock: Clock) -> tuple[Path, list[str]]:
    data_dir = tmp_path / "archive"
    ids = []
    with EvidenceArchive.open(data_dir, clock=clock) as archive:
        for number, (anchor, category) in enumerate(
            [("a1", "absolute_claim"), ("a1", "medical_claim"), ("a2", "precious_metal_claim"), ("a2", "false_price")]
        ):
            alert = make_alert(number, anchor=anchor, category=category)
            ids.append(archive.record_alert(alert, clip=make_clip(0.5, number), clip_start=1.0, transcript=alert.text))
    return data_dir, ids


def test_decisions_are_chained_verified_and_exported(archive_with_alerts, clock, tmp_path) -> None:
    data_dir, ids = archive_with_alerts
    with EvidenceArchive.open(data_dir, clock=clock) as archive:
        first = archive.record_decision(
            ids[0], decision="dismiss", by="Mod Alice", reason="price was quoted from a rival"
        )
        archive.record_decision(ids[0], decision="confirm", by="Mod Bob")  # a later decision supersedes
        archive.record_decision(ids[1], decision="dismiss", by="Mod Alice", reason="negated: 不能治疗")
        archive.record_decision(ids[2], decision="inspect", by="Mod Bob")
        assert first["kind"] == "decision" and first["by"] == "Mod Alice" and len(first["decision_id"]) == 32
        history = archive.decisions(ids[0])
        assert [d["decision"] for d in history] == ["dismiss", "confirm"]
        assert history[0]["decision_id"] == first["decision_id"]  # the same id as when it was recorded
        record = archive.anchor_record(bucket="day")
        assert {r["anchor_id"]: (r["alerts"], r["confirmed"], r["dismissed"], r["inspected"]) for r in record} == {
            "a1": (2, 1, 1, 0), "a2": (2, 0, 0, 1),
        }
        status = archive.proof_status(ids[3])
        assert status["leaf_index"] == 3 and status["tree_size"] == 8 and status["purged"] is None

    report = verify_archive(data_dir)
    assert report.ok, report.problems
    assert (report.alerts, report.decisions) == (4, 4)

    out = tmp_path / "labels.jsonl"
    assert export_decisions(data_dir, out) == {"violation": 1, "false_alert": 1}
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(x["label"], x["evidence_id"], x["decided_by"]) for x in lines] == [
        ("violation", ids[0], "Mod Bob"), ("false_alert", ids[1], "Mod Alice"),
    ]
    assert lines[1]["reason"] == "negated: 不能治疗" and lines[1]["alert"]["category"] == "medical_claim"
    assert lines[0]["alert"]["matched"] == "全网最低价"  # the stored alert, as sent


def test_decisions_refused_with_reasons(archive_with_alerts, clock) -> None:
    data_dir, ids = archive_with_alerts
    with EvidenceArchive.open(data_dir, clock=clock) as archive:
        with pytest.raises(ArchiveError, match="dismissing a false alert needs a reason"):
            archive.record_decision(ids[0], decision="dismiss", by="Mod Alice", reason="  ")
        with pytest.raises(ArchiveError, match="inspection is for"):
            archive.record_decision(ids[0], decision="inspect", by="Mod Alice")
        with pytest.raises(ArchiveError, match="decision 'approve' is not one of"):
            archive.record_decision(ids[0], decision="approve", by="Mod Alice")
        with pytest.raises(ArchiveError, match="no evidence with id"):
            archive.record_decision("0" * 32, decision="confirm", by="Mod Alice")
        size = archive.size
    assert size == 4  # nothing was appended


def test_decisions_cli_export(archive_with_alerts, clock, tmp_path) -> None:
    data_dir, ids = archive_with_alerts
    with EvidenceArchive.open(data_dir, clock=clock) as archive:
        archive.record_decision(ids[3], decision="confirm", by="Mod Alice")
    out = tmp_path / "out" / "d.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "archive", "decisions", "export", "--out", str(out),
         "--data-dir", str(data_dir)],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "wrote 1 labeled alert(s)" in done.stdout and "1 violation, 0 false_alert" in done.stdout
    assert json.loads(out.read_text(encoding="utf-8"))["alert"]["category"] == "false_price"
    verify = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "archive", "verify", "--data-dir", str(data_dir)],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )
    assert verify.returncode == 0 and "1 decisions" in verify.stdout, verify.stdout


def test_anchor_totals() -> None:
    rows = [
        {"anchor_id": "a1", "bucket": "2024-03-01", "alerts": 3, "confirmed": 1, "dismissed": 1, "inspected": 0},
        {"anchor_id": "a1", "bucket": "2024-03-02", "alerts": 2, "confirmed": 2, "dismissed": 0, "inspected": 0},
        {"anchor_id": "a2", "bucket": "2024-03-01", "alerts": 1, "confirmed": 0, "dismissed": 0, "inspected": 1},
    ]
    first, second = anchors_from_rows(rows)
    assert (first["anchor_id"], first["alerts"], first["confirmed"], first["undecided"]) == ("a1", 5, 3, 1)
    assert first["confirmed_share_of_decided"] == 0.75 and len(first["series"]) == 2
    assert second["confirmed_share_of_decided"] is None and second["undecided"] == 0


# -- sessions and credentials --------------------------------------------------------------------------

TOKENS = {
    "mod-token": TokenGrant(role="moderator", name="Mod Alice"),
    "anchor-token": TokenGrant(role="anchor", rooms=["r1"]),
}


def test_console_session_cookie_lifecycle() -> None:
    now = [1000.0]
    sessions = ConsoleSessions(ttl_s=60, clock=lambda: now[0])
    grant = authenticate(TOKENS, {"Authorization": "Bearer mod-token"})
    assert isinstance(grant, Grant) and grant.identity == "Mod Alice" and not grant.via_cookie
    session_id, expires_at = sessions.create(grant)
    assert len(session_id) >= 43 and expires_at == 1060.0
    cookie = sessions.cookie(session_id)
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    header = f"other=1; monitor_session={session_id}"
    via_cookie = authorize(TOKENS, {"Cookie": header}, "/v1/alerts", sessions)
    assert isinstance(via_cookie, Grant) and via_cookie.via_cookie and via_cookie.name == "Mod Alice"
    assert authorize(TOKENS, {"Cookie": header}, "/v1/ingest", sessions) == Denial(
        403, "a console session may not stream audio; use a bearer token"
    )
    assert authorize(TOKENS, {"Cookie": "monitor_session=forged"}, "/v1/alerts", sessions) == Denial(
        401, "console session expired or unknown: sign in again"
    )
    now[0] = 1061.0
    assert sessions.grant_for_cookie(header) is None  # expired
    second, _ = sessions.create(grant)
    assert sessions.end(f"monitor_session={second}") and sessions.grant_for_cookie(f"monitor_session={second}") is None
    assert "Max-Age=0" in sessions.clearing_cookie()


def test_websocket_debug_log_redacts_credentials(caplog: pytest.LogCaptureFixture) -> None:
    logger = redacting_logger()
    with caplog.at_level(logging.DEBUG, logger=logger.name):
        logger.debug("< %s: %s", "Authorization", "Bearer mod-token")
        logger.debug("< %s: %s", "Cookie", "monitor_session=abc123")
        logger.debug("> %s: %s", "Set-Cookie", "monitor_session=abc123; HttpOnly")
        logger.debug("< %s: %s", "Host", "127.0.0.1:8765")
        logger.debug("< %s %s %s", "GET", "/v1/alerts?room=r1&access_token=mod-token", "HTTP/1.1")
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "mod-token" not in text and "abc123" not in text
    assert "< Authorization: [redacted]" in text and "< Host: 127.0.0.1:8765" in text
    assert "< GET /v1/alerts?room=r1&access_token=[redacted] HTTP/1.1" in text
