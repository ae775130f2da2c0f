"""Recording, look-ups, retention, legal holds and purge."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from monitor.archive import EvidenceArchive, verify_archive
from monitor.archive.records import add_years, decode_flac
from monitor.errors import ArchiveError

from .conftest import Clock, make_alert, make_clip


def test_alert_evidence_round_trips_clip_transcript_alert_and_versions(tmp_path: Path, clock: Clock) -> None:
    alert = make_alert(1)
    clip = make_clip(2.0, seed=4)
    with EvidenceArchive.open(tmp_path, clock=clock) as archive:
        eid = archive.record_alert(alert, clip=clip, clip_start=10.0, transcript="这款是全网最低价")
        decoded, rate = decode_flac(archive.read_part(eid, "clip"))
        assert rate == 16000
        assert decoded.shape == clip.shape
        assert np.max(np.abs(decoded - clip)) < 1e-3  # 16-bit quantisation only
        assert archive.read_part(eid, "transcript").decode() == "这款是全网最低价"
        stored = json.loads(archive.read_part(eid, "alert"))
        assert stored["alert_id"] == alert.alert_id and stored["evidence_id"] is None
        leaf = json.loads((tmp_path / "log" / "records.log").read_bytes().splitlines()[0])
    assert leaf["lexicon_version"] == "lex-2024.1" and leaf["model_version"] == "clf-0.3"
    assert leaf["parts"]["clip"]["start"] == 10.0 and leaf["parts"]["clip"]["duration"] == 2.0
    assert "全网最低价" not in json.dumps(leaf, ensure_ascii=False)  # content only in blobs (purgeable)


def test_alert_without_audio_is_stored_without_a_clip(tmp_path: Path, clock: Clock) -> None:
    with EvidenceArchive.open(tmp_path, clock=clock) as archive:
        eid = archive.record_alert(make_alert(1), clip=None, clip_start=None, transcript="text only")
        with pytest.raises(ArchiveError, match="no part 'clip'"):
            archive.read_part(eid, "clip")
    assert verify_archive(tmp_path).ok


def test_lookups_by_room_anchor_category_and_time(tmp_path: Path, clock: Clock) -> None:
    with EvidenceArchive.open(tmp_path, clock=clock) as archive:
        a = archive.record_alert(make_alert(1, room="r1", anchor="x"), clip=None, clip_start=None, transcript="")
        b = archive.record_alert(make_alert(2, room="r2", anchor="y", category="medical_claim"),
                                 clip=None, clip_start=None, transcript="")
        assert [r.evidence_id for r in archive.find(room_id="r1")] == [a]
        assert [r.evidence_id for r in archive.find(anchor_id="y")] == [b]
        assert [r.evidence_id for r in archive.find(category="medical_claim")] == [b]
        assert {r.evidence_id for r in archive.find(since="2000-01-01T00:00:00.000000Z")} == {a, b}
        assert archive.find(until="2000-01-01T00:00:00.000000Z") == []


def test_retention_below_three_years_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="retention_years=2 is below the legal minimum of 3"):
        EvidenceArchive.open(tmp_path, retention_years=2)


def test_retain_until_is_stream_end_plus_years_and_sessions_extend_their_alerts(
    tmp_path: Path, clock: Clock
) -> None:
    stream_end = datetime(2024, 2, 29, 12, 0, tzinfo=UTC)
    with EvidenceArchive.open(tmp_path, retention_years=5, clock=clock) as archive:
        eid = archive.record_alert(make_alert(1), clip=None, clip_start=None, transcript="",
                                   retain_from=stream_end)
        assert archive.get(eid).retain_until == "2029-03-01T12:00:00.000000Z"  # 29 Feb rounds up
        later = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
        other = archive.record_alert(make_alert(2), clip=None, clip_start=None, transcript="")
        sid = archive.record_session(session_id="s", room_id="r1", anchor_id="a1", transcript=[],
                                     started_at=clock.now - timedelta(hours=1), ended_at=later + timedelta(days=400))
        extended = archive.get(other).retain_until
        assert extended == archive.get(sid).retain_until
        assert extended.startswith("2030-04-05")
        assert archive.get(eid).retain_until.startswith("2030-04-05")  # recorded within the session too
    assert add_years(datetime(2023, 5, 1), 3) == datetime(2026, 5, 1)


def test_keys_are_created_once_with_private_key_mode_0600(tmp_path: Path) -> None:
    EvidenceArchive.open(tmp_path).close()
    private = tmp_path / "keys" / "signing_key.pem"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert b"PRIVATE" not in (tmp_path / "keys" / "public_key.pem").read_bytes()
    first = private.read_bytes()
    EvidenceArchive.open(tmp_path).close()
    assert private.read_bytes() == first


def test_second_writer_is_refused_while_the_first_is_open(tmp_path: Path) -> None:
    with EvidenceArchive.open(tmp_path), pytest.raises(ArchiveError, match="open for writing by another"):
        EvidenceArchive.open(tmp_path)


def old_archive(tmp_path: Path) -> tuple[EvidenceArchive, list[str]]:
    """Alerts recorded in 2020 (retention over) and one recorded now (retention running)."""
    clock = Clock(datetime(2020, 6, 1, tzinfo=UTC))
    archive = EvidenceArchive.open(tmp_path, clock=clock)
    ids = [
        archive.record_alert(make_alert(i), clip=make_clip(0.5, seed=i), clip_start=0.0, transcript=f"old {i}")
        for i in range(3)
    ]
    clock.now = datetime.now(UTC)
    ids.append(archive.record_alert(make_alert(9), clip=make_clip(0.5, seed=9), clip_start=0.0,
                                    transcript="recent"))
    return archive, ids


def test_purge_deletes_only_expired_unheld_content_and_verify_reports_it_as_purged(tmp_path: Path) -> None:
    archive, ids = old_archive(tmp_path)
    with archive:
        archive.hold(ids[0], reason="court order 7")
        result = archive.purge()
        assert sorted(result.evidence_ids) == sorted(ids[1:3])
        assert result.bytes_freed > 0
        for eid in ids[1:3]:
            with pytest.raises(ArchiveError, match="purged"):
                archive.read_part(eid, "clip")
        assert archive.read_part(ids[0], "transcript") == b"old 0"  # held
        assert archive.read_part(ids[3], "transcript") == b"recent"  # within retention
        log_kinds = [json.loads(line)["kind"] for line in (tmp_path / "log" / "records.log").read_bytes().splitlines()]
        assert log_kinds[-1] == "purge"
    report = verify_archive(tmp_path)
    assert report.ok, report.problems
    assert report.purged == 2 and report.held == 1


def test_explicit_purge_refuses_records_within_retention_or_on_hold(tmp_path: Path) -> None:
    archive, ids = old_archive(tmp_path)
    with archive:
        with pytest.raises(ArchiveError, match=f"evidence {ids[3]} must be retained until"):
            archive.purge(evidence_ids=[ids[3]])
        archive.hold(ids[0])
        with pytest.raises(ArchiveError, match="under legal hold"):
            archive.purge(evidence_ids=[ids[0]])
        archive.hold(ids[0], release=True)
        assert archive.purge(evidence_ids=[ids[0]]).evidence_ids == [ids[0]]
        with pytest.raises(ArchiveError, match="later than the system clock"):
            archive.purge(now=datetime.now(UTC) + timedelta(days=365 * 4))
        assert archive.purge(now=datetime(2021, 1, 1, tzinfo=UTC)).evidence_ids == []
    assert verify_archive(tmp_path).ok


def test_shared_blob_survives_while_any_record_using_it_is_retained(tmp_path: Path) -> None:
    clock = Clock(datetime(2020, 1, 1, tzinfo=UTC))
    with EvidenceArchive.open(tmp_path, clock=clock) as archive:
        old = archive.record_alert(make_alert(1), clip=None, clip_start=None, transcript="same words")
        clock.now = datetime.now(UTC)
        new = archive.record_alert(make_alert(2), clip=None, clip_start=None, transcript="same words")
        assert archive.purge().evidence_ids == [old]
        assert archive.read_part(new, "transcript") == b"same words"
    assert verify_archive(tmp_path).ok
