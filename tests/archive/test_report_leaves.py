"""Viewer reports and inspection tickets in the evidence archive: leaves, index, verify, tampering."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.archive import EvidenceArchive, verify_archive
from monitor.archive.layout import ArchiveLayout
from monitor.archive.leaves import TIME_FIELDS, ViewerReport, report_part
from monitor.archive.recovery import remove_index_files
from monitor.errors import ArchiveError

from .conftest import Clock, make_alert, make_clip

REPORTED_AT = datetime(2024, 3, 1, 7, 59, 30, tzinfo=UTC)


def _purity_alert(number: int, *, room: str = "r1", anchor: str = "a1"):
    alert = make_alert(number, room=room, anchor=anchor, category="precious_metal_claim")
    alert.severity = "info"
    return alert


def _report(archive: EvidenceArchive, **changes: object) -> str:
    values: dict[str, object] = {
        "room_id": "r1", "anchor_id": "a1", "session_id": "s1", "stream_time": 12.5, "placed": "stream_time",
        "reported_at": REPORTED_AT, "viewer_id": "viewer-9", "reason": "主播说能治失眠", "category": "medical_claim",
    }
    values.update(changes)
    return archive.record_report(**values)  # type: ignore[arg-type]


def test_report_leaf_is_pinned_and_keeps_the_viewers_words_in_a_blob() -> None:
    content = report_part(viewer_id="viewer-9", reason="主播说能治失眠")
    record = ViewerReport(
        room_id="r1", anchor_id="a1", session_id="s1", stream_time=12.5, placed="stream_time",
        reported_at=REPORTED_AT, category="medical_claim", content=content,
        recorded_at=datetime(2024, 3, 1, 8, 0, 1, tzinfo=UTC), retain_until=datetime(2027, 3, 1, 8, 0, 1, tzinfo=UTC),
    )
    assert record.line() == (
        b'{"anchor_id":"a1","category":"medical_claim","kind":"report","parts":{"report":{"sha256":"'
        + content.manifest()["sha256"].encode()
        + b'","size":' + str(len(content.data)).encode() + b',"type":"application/json"}},"placed":"stream_time",'
        b'"recorded_at":"2024-03-01T08:00:01.000000Z","reported_at":"2024-03-01T07:59:30.000000Z",'
        b'"retain_until":"2027-03-01T08:00:01.000000Z","room_id":"r1","session_id":"s1","stream_time":12.5,"v":1}'
    )
    assert "主播".encode() not in record.line() and b"viewer-9" not in record.line()
    assert json.loads(content.data) == {"reason": "主播说能治失眠", "viewer_id": "viewer-9"}
    assert TIME_FIELDS["report"] == "recorded_at"
    assert TIME_FIELDS["inspection_claim"] == TIME_FIELDS["inspection_outcome"] == "at"


def test_reports_are_indexed_verified_and_a_tampered_report_is_named(tmp_path: Path, clock: Clock) -> None:
    data_dir = tmp_path / "archive"
    with EvidenceArchive.open(data_dir, clock=clock) as archive:
        alert_id = archive.record_alert(make_alert(1), clip=make_clip(), clip_start=10.0, transcript="t")
        report_id = _report(archive)
        other = _report(archive, session_id=None, stream_time=None, placed="received", category=None)
        assert len(report_id) == 32 and report_id != alert_id
        rows = archive.reports(room_id="r1")
        assert [r["report_id"] for r in rows] == [other, report_id]  # newest first
        assert rows[1]["stream_time"] == 12.5 and rows[1]["placed"] == "stream_time"
        assert [r["report_id"] for r in archive.reports(sessionless=True)] == [other]
        assert json.loads(archive.read_part(report_id, "report"))["reason"] == "主播说能治失眠"
        assert archive.get(report_id).kind == "report"
        rows = archive.anchor_record(bucket="day")  # the alert's day (now) and the reports' day (2024)
        assert {r["anchor_id"] for r in rows} == {"a1"}
        assert (sum(r["alerts"] for r in rows), sum(r["reports"] for r in rows)) == (1, 2)
        blob = archive.blobs.path_for(archive.index.parts(report_id)["report"]["sha256"])

    report = verify_archive(data_dir)
    assert report.ok, report.problems
    assert (report.alerts, report.reports) == (1, 2)

    blob.chmod(0o644)
    blob.write_bytes(b'{"reason":"something else","viewer_id":"viewer-9"}')
    report = verify_archive(data_dir)
    assert not report.ok
    assert f"evidence {report_id}: stored report was altered" in str(report.first_problem)


def test_an_altered_report_leaf_breaks_the_signed_root(tmp_path: Path, clock: Clock) -> None:
    data_dir = tmp_path / "archive"
    with EvidenceArchive.open(data_dir, clock=clock) as archive:
        _report(archive)
    log = ArchiveLayout(data_dir).records_log
    text = log.read_bytes()
    assert b'"stream_time":12.5' in text
    log.write_bytes(text.replace(b'"stream_time":12.5', b'"stream_time":92.5'))
    report = verify_archive(data_dir)
    assert not report.ok
    assert "record #0" in str(report.first_problem) and "differs from the signed checkpoint" in str(
        report.first_problem
    )


def test_inspection_tickets_group_claims_per_product_and_survive_an_index_rebuild(
    tmp_path: Path, clock: Clock
) -> None:
    data_dir = tmp_path / "archive"
    with EvidenceArchive.open(data_dir, clock=clock) as archive:
        ids = [
            archive.record_alert(_purity_alert(n), clip=make_clip(seed=n), clip_start=10.0 + n, transcript=f"t{n}")
            for n in range(4)
        ]
        first = archive.record_inspection_claim(ids[0], session_id="s1", product="足金手镯", room_category="jewelry")
        second = archive.record_inspection_claim(ids[1], session_id="s1", product="足金手镯", room_category="jewelry")
        other = archive.record_inspection_claim(ids[2], session_id="s1", product="翡翠手镯", room_category="jewelry")
        assert first["ticket_id"] == second["ticket_id"] != other["ticket_id"]
        assert [t["ticket_id"] for t in archive.tickets(status="open")] == [other["ticket_id"], first["ticket_id"]]
        outcome = archive.record_inspection_outcome(
            first["ticket_id"], outcome="inconsistent", by="Inspector Li", certificate="NGTC-123", note="  "
        )
        assert outcome["note"] is None and outcome["certificate"] == "NGTC-123" and len(outcome["outcome_id"]) == 32
        # the ticket is closed: a later claim on the same product opens a new one
        later = archive.record_inspection_claim(ids[3], session_id="s1", product="足金手镯", room_category="jewelry")
        assert later["ticket_id"] not in (first["ticket_id"], other["ticket_id"])
        with pytest.raises(ArchiveError, match="no inspection ticket"):
            archive.record_inspection_outcome("f" * 32, outcome="consistent", by="Inspector Li")
        with pytest.raises(ArchiveError, match="not one of"):
            archive.record_inspection_outcome(other["ticket_id"], outcome="fine", by="Inspector Li")
        plain = archive.record_alert(make_alert(9), clip=None, clip_start=None, transcript="t")
        with pytest.raises(ArchiveError, match="inspection is for"):
            archive.record_inspection_claim(plain, session_id="s1", product="足金手镯", room_category=None)
        ticket = archive.ticket(first["ticket_id"])
        assert ticket is not None
        assert [c["evidence_id"] for c in ticket["claims"]] == ids[:2]
        assert ticket["outcome"] == "inconsistent" and ticket["outcomes"][0]["by"] == "Inspector Li"
        (record,) = [r for r in archive.anchor_record(bucket="day") if r["inspections"]]
        assert (record["inspections"], record["inspections_inconsistent"], record["inspections_consistent"]) == (
            3, 1, 0,
        )
    remove_index_files(ArchiveLayout(data_dir))  # the tickets come back from the log
    with EvidenceArchive.open(data_dir, clock=clock) as archive:
        assert archive.ticket(first["ticket_id"]) == ticket
        assert {t["ticket_id"] for t in archive.tickets(status="open")} == {other["ticket_id"], later["ticket_id"]}
    report = verify_archive(data_dir)
    assert report.ok, report.problems
    assert (report.inspection_claims, report.inspection_outcomes) == (4, 1)


def test_verify_names_an_outcome_on_a_ticket_that_never_opened(tmp_path: Path, clock: Clock) -> None:
    from monitor.archive.leaves import InspectionOutcome

    data_dir = tmp_path / "archive"
    with EvidenceArchive.open(data_dir, clock=clock) as archive:
        # written through the log directly: the archive's own method refuses it
        archive._log.append(InspectionOutcome(
            ticket_id="t" * 32, room_id="r1", anchor_id="a1", product=None, outcome="consistent",
            certificate=None, note=None, by="x", at=clock(),
        ))
    report = verify_archive(data_dir)
    assert str(report.first_problem) == f"record #0: inspection outcome on unknown ticket {'t' * 32}"
