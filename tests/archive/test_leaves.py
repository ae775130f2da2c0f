"""Golden log leaves: every leaf kind the archive writes, byte for byte.

An evidence id is SHA-256 over the leaf bytes and every checkpoint signs their
hashes, so a leaf written differently (a key renamed, a field added, a time
formatted otherwise) would fork the format: old archives would still verify, but
two versions would write two different leaves for the same record. These
constants were recorded from the code path that wrote the archives in the field
(``EvidenceArchive.record_*``, ``hold``, ``purge`` before issue 15) with fixed
inputs, and must never change.

The FLAC bytes come from libav, whose encoder tag changes with its version, so the
clip's ``sha256`` and ``size`` are filled in from ``encode_flac`` of the same clip;
every other byte of the leaf is fixed. The alert JSON is the alert's wire form with
the fields it had when these were recorded (:class:`RecordedWireAlert`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest

from monitor.alerts import Alert
from monitor.archive import EvidenceArchive, verify_archive
from monitor.archive.leaves import (
    TIME_FIELDS,
    AlertEvidence,
    Decision,
    LegalHold,
    LogRecord,
    Purge,
    SessionTranscript,
    StoredPart,
    alert_parts,
    session_transcript_part,
)
from monitor.archive.records import canonical_json, encode_flac, evidence_id_of, iso_utc
from monitor.errors import ArchiveError

from .conftest import make_alert, make_clip


class FixedClock:
    """A UTC clock that stays where it is set (the leaves do not depend on how often it is read)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


WIRE_FIELDS_RECORDED = (
    "alert_id", "room_id", "anchor_id", "category", "severity", "rule_id", "matched", "source", "confidence",
    "text", "start", "end", "reminder", "regulation", "lexicon_version", "model_version", "evidence_id",
    "emitted_at",
)
"""The alert's wire fields when the goldens were recorded. The stored alert JSON is the alert as
given (the archive only hashes it), so fields the contract gains later are left out here: the
goldens pin what the archive writes for a given alert JSON."""


class RecordedWireAlert(Alert):
    def wire(self) -> dict[str, object]:
        wire = super().wire()
        return {name: wire[name] for name in WIRE_FIELDS_RECORDED}


def fixed_alert(number: int, *, room: str = "r1", category: str = "absolute_claim") -> Alert:
    alert = make_alert(number, room=room, category=category)
    fields = {**alert.model_dump(), "alert_id": f"018e0a1b2c3d{number:020x}",
              "emitted_at": f"2024-03-01T07:5{number}:00.250Z"}
    return RecordedWireAlert(**fields)


CLIP_SECONDS = 0.5
CLIP_START = 9.75
RECORDED = datetime(2024, 3, 1, 8, 0, 0, 125000, tzinfo=UTC)
SHARED_TRANSCRIPT = "这款是全网最低价"
PURGED = datetime(2028, 6, 1, 0, 0, tzinfo=UTC)


def write_every_kind(data_dir: Path) -> tuple[list[bytes], dict[str, object]]:
    """Write one leaf of every kind (and variant) with fixed inputs: the log's lines and what the
    calls returned. Only the first alert has a clip, and no other leaf names it."""
    clock = FixedClock(RECORDED)
    returned: dict[str, object] = {}
    with EvidenceArchive.open(data_dir, clock=clock) as archive:
        with_clip = archive.record_alert(
            fixed_alert(1, room="r2"), clip=make_clip(CLIP_SECONDS, seed=1), clip_start=CLIP_START,
            transcript=SHARED_TRANSCRIPT,
        )
        metal = archive.record_alert(
            fixed_alert(2, category="precious_metal_claim"), clip=None, clip_start=None,
            transcript="足金999", retain_from=datetime(2024, 3, 1, 9, 30, tzinfo=UTC),
        )
        claim = archive.record_alert(fixed_alert(3), clip=None, clip_start=None, transcript=SHARED_TRANSCRIPT)
        session = archive.record_session(
            session_id="s-1", room_id="r1", anchor_id="a1",
            transcript=[{"start": 0.0, "end": 2.5, "text": "大家好"}, {"start": 2.5, "end": 4.0, "text": "上链接"}],
            started_at=datetime(2024, 3, 1, 7, 0, tzinfo=UTC), ended_at=datetime(2024, 3, 1, 10, 0, tzinfo=UTC),
        )
        clock.now = RECORDED.replace(minute=5)
        archive.hold(claim, reason="case 2024-17")
        archive.hold(claim, release=True)
        returned["confirm"] = archive.record_decision(claim, decision="confirm", by="mod-1")
        returned["dismiss"] = archive.record_decision(
            claim, decision="dismiss", by=" mod-2 ", reason="  a quote, not a claim  "
        )
        returned["inspect"] = archive.record_decision(metal, decision="inspect", by="mod-1")
        clock.now = PURGED
        purged = archive.purge(now=PURGED.replace(month=3), evidence_ids=[session, claim, metal])
        returned["purged"] = (purged.evidence_ids, purged.blobs)
        returned["ids"] = [with_clip, metal, claim, session]
    return (data_dir / "log" / "records.log").read_bytes().splitlines(), returned


GOLDEN_LEAVES: dict[str, str] = {
    "alert_with_clip": (
        '{"alert_id":"018e0a1b2c3d00000000000000000001","anchor_id":"a1","category":"absolute_claim",'
        '"emitted_at":"2024-03-01T07:51:00.250Z","end":13.5,"kind":"alert","lexicon_version":"lex-2024.1",'
        '"model_version":"clf-0.3",'
        '"parts":{"alert":{"sha256":"135a1f3ee835ea6d5252a36cc52bf650d6d55f1623813637381e110c1f0a5015",'
        '"size":507,"type":"application/json"},"clip":{"duration":0.5,"sample_rate":16000,'
        '"sha256":"{clip_sha256}","size":{clip_size},"start":9.75,"type":"audio/flac"},'
        '"transcript":{"sha256":"d965a47e2ad0dc6f1a98f68a6c95402d0f2b5928910714bbc156273c5be68fe7","size":24,'
        '"type":"text/plain; charset=utf-8"}},"recorded_at":"2024-03-01T08:00:00.125000Z",'
        '"retain_until":"2027-03-01T08:00:00.125000Z","room_id":"r2","rule_id":"rule.absolute_claim",'
        '"severity":"warning","source":"lexicon","start":11.0,"v":1}'
    ),
    "alert": (
        '{"alert_id":"018e0a1b2c3d00000000000000000002","anchor_id":"a1","category":"precious_metal_claim",'
        '"emitted_at":"2024-03-01T07:52:00.250Z","end":14.5,"kind":"alert","lexicon_version":"lex-2024.1",'
        '"model_version":"clf-0.3",'
        '"parts":{"alert":{"sha256":"a47847235c04dee916333fc8ae24768c4e1c75aa0dda5649dca40c3ff764bd6e",'
        '"size":519,"type":"application/json"},'
        '"transcript":{"sha256":"34849cdfd5b41fb314a28a91cd07086c762a687e39dbabc2685af8f8f2ec7226","size":9,'
        '"type":"text/plain; charset=utf-8"}},"recorded_at":"2024-03-01T08:00:00.125000Z",'
        '"retain_until":"2027-03-01T09:30:00.000000Z","room_id":"r1","rule_id":"rule.precious_metal_claim",'
        '"severity":"warning","source":"lexicon","start":12.0,"v":1}'
    ),
    "alert_shared_transcript": (
        '{"alert_id":"018e0a1b2c3d00000000000000000003","anchor_id":"a1","category":"absolute_claim",'
        '"emitted_at":"2024-03-01T07:53:00.250Z","end":15.5,"kind":"alert","lexicon_version":"lex-2024.1",'
        '"model_version":"clf-0.3",'
        '"parts":{"alert":{"sha256":"307aab29079405d0fc27c6239eca287279c4799aea09eac7d7d59a13d05942d1",'
        '"size":507,"type":"application/json"},'
        '"transcript":{"sha256":"d965a47e2ad0dc6f1a98f68a6c95402d0f2b5928910714bbc156273c5be68fe7","size":24,'
        '"type":"text/plain; charset=utf-8"}},"recorded_at":"2024-03-01T08:00:00.125000Z",'
        '"retain_until":"2027-03-01T08:00:00.125000Z","room_id":"r1","rule_id":"rule.absolute_claim",'
        '"severity":"warning","source":"lexicon","start":13.0,"v":1}'
    ),
    "session": (
        '{"anchor_id":"a1","covers":["a6b1295544c68876f86a22d12aa2370a","8ad38cf4b53c9bb9478286a387cc8df4"],'
        '"ended_at":"2024-03-01T10:00:00.000000Z","kind":"session",'
        '"parts":{"transcript":{"sha256":"bfc6cdca0bb733d3926ac0efa79cb1cae56304747eb3bc1fb545e15598f86fdb",'
        '"size":87,"type":"application/json"}},"recorded_at":"2024-03-01T08:00:00.125000Z",'
        '"retain_until":"2027-03-01T10:00:00.000000Z","room_id":"r1","session_id":"s-1",'
        '"started_at":"2024-03-01T07:00:00.000000Z","v":1}'
    ),
    "hold": (
        '{"at":"2024-03-01T08:05:00.125000Z","evidence_id":"8ad38cf4b53c9bb9478286a387cc8df4","kind":"hold",'
        '"reason":"case 2024-17","v":1}'
    ),
    "release": (
        '{"at":"2024-03-01T08:05:00.125000Z","evidence_id":"8ad38cf4b53c9bb9478286a387cc8df4",'
        '"kind":"release","reason":null,"v":1}'
    ),
    "decision_confirm": (
        '{"alert_id":"018e0a1b2c3d00000000000000000003","anchor_id":"a1","at":"2024-03-01T08:05:00.125000Z",'
        '"by":"mod-1","category":"absolute_claim","decision":"confirm",'
        '"evidence_id":"8ad38cf4b53c9bb9478286a387cc8df4","kind":"decision","reason":null,"room_id":"r1",'
        '"severity":"warning","v":1}'
    ),
    "decision_dismiss": (
        '{"alert_id":"018e0a1b2c3d00000000000000000003","anchor_id":"a1","at":"2024-03-01T08:05:00.125000Z",'
        '"by":"mod-2","category":"absolute_claim","decision":"dismiss",'
        '"evidence_id":"8ad38cf4b53c9bb9478286a387cc8df4","kind":"decision","reason":"a quote, not a claim",'
        '"room_id":"r1","severity":"warning","v":1}'
    ),
    "decision_inspect": (
        '{"alert_id":"018e0a1b2c3d00000000000000000002","anchor_id":"a1","at":"2024-03-01T08:05:00.125000Z",'
        '"by":"mod-1","category":"precious_metal_claim","decision":"inspect",'
        '"evidence_id":"a6b1295544c68876f86a22d12aa2370a","kind":"decision","reason":null,"room_id":"r1",'
        '"severity":"warning","v":1}'
    ),
    "purge": (
        '{"at":"2028-03-01T00:00:00.000000Z",'
        '"blobs":["307aab29079405d0fc27c6239eca287279c4799aea09eac7d7d59a13d05942d1",'
        '"34849cdfd5b41fb314a28a91cd07086c762a687e39dbabc2685af8f8f2ec7226",'
        '"a47847235c04dee916333fc8ae24768c4e1c75aa0dda5649dca40c3ff764bd6e",'
        '"bfc6cdca0bb733d3926ac0efa79cb1cae56304747eb3bc1fb545e15598f86fdb"],'
        '"evidence_ids":["8ad38cf4b53c9bb9478286a387cc8df4","a6b1295544c68876f86a22d12aa2370a",'
        '"e133664aa92965458c1fb351c39ab59b"],"kind":"purge","recorded_at":"2028-06-01T00:00:00.000000Z",'
        '"v":1}'
    ),
}
GOLDEN_LOG_SHA256 = "aab49caf2cec983894bc022dfe783812420f6ab116532f29f706bc4d83714faf"
"""SHA-256 over the golden leaves after the first (whose clip bytes come from libav), newline-joined."""


def golden_lines() -> list[bytes]:
    """The golden leaves as log lines, the clip's hash and size filled in from ``encode_flac``."""
    flac = encode_flac(make_clip(CLIP_SECONDS, seed=1), 16000)
    first = GOLDEN_LEAVES["alert_with_clip"]
    first = first.replace("{clip_sha256}", hashlib.sha256(flac).hexdigest()).replace("{clip_size}", str(len(flac)))
    return [first.encode(), *(text.encode() for name, text in GOLDEN_LEAVES.items() if name != "alert_with_clip")]


def test_golden_leaves_are_canonical_and_pinned_by_their_hash() -> None:
    lines = golden_lines()
    for line in lines:
        leaf = json.loads(line)
        assert json.dumps(leaf, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() == line
    assert hashlib.sha256(b"\n".join(lines[1:])).hexdigest() == GOLDEN_LOG_SHA256


def test_every_leaf_kind_is_written_byte_for_byte_as_before(tmp_path: Path) -> None:
    lines, returned = write_every_kind(tmp_path / "archive")
    expected = golden_lines()
    for name, line, golden in zip(GOLDEN_LEAVES, lines, expected, strict=True):
        assert line.decode() == golden.decode(), f"the {name} leaf changed"
    with_clip, metal, claim, session = returned["ids"]  # type: ignore[misc]
    assert [with_clip, metal, claim, session] == [evidence_id_of(line) for line in expected[:4]]
    assert [metal, claim, session] == [
        "a6b1295544c68876f86a22d12aa2370a", "8ad38cf4b53c9bb9478286a387cc8df4", "e133664aa92965458c1fb351c39ab59b"
    ]
    # record_decision returns the leaf with its decision id (what the console sends moderators)
    for name, golden in zip(("confirm", "dismiss", "inspect"), expected[6:9], strict=True):
        assert returned[name] == {**json.loads(golden), "decision_id": evidence_id_of(golden)}
    purge = json.loads(expected[-1])
    assert returned["purged"] == (purge["evidence_ids"], purge["blobs"])
    assert verify_archive(tmp_path / "archive").ok


def test_each_record_class_builds_its_golden_leaf() -> None:
    """The typed records alone (no archive) give the golden bytes, and decisions and purges read back."""
    golden = {name: text.encode() for name, text in GOLDEN_LEAVES.items() if name != "alert_with_clip"}
    metal_alert = fixed_alert(2, category="precious_metal_claim")
    metal_parts = alert_parts(metal_alert, clip=None, clip_start=None, sample_rate=16000, transcript="足金999")
    later = RECORDED.replace(minute=5)
    metal = AlertEvidence(metal_alert, metal_parts, RECORDED, datetime(2027, 3, 1, 9, 30, tzinfo=UTC))
    assert metal.line() == golden["alert"]
    assert metal.stored_parts() == [canonical_json(metal_alert.wire()), "足金999".encode()]
    segments = [{"start": 0.0, "end": 2.5, "text": "大家好"}, {"start": 2.5, "end": 4.0, "text": "上链接"}]
    claim_id, metal_id = "8ad38cf4b53c9bb9478286a387cc8df4", evidence_id_of(golden["alert"])
    session = SessionTranscript(
        session_id="s-1", room_id="r1", anchor_id="a1", started_at=datetime(2024, 3, 1, 7, 0, tzinfo=UTC),
        ended_at=datetime(2024, 3, 1, 10, 0, tzinfo=UTC), covers=(metal_id, claim_id),
        transcript=session_transcript_part("s-1", segments), recorded_at=RECORDED,
        retain_until=datetime(2027, 3, 1, 10, 0, tzinfo=UTC),
    )
    assert session.line() == golden["session"]
    assert LegalHold(claim_id, later, "case 2024-17").line() == golden["hold"]
    assert LegalHold(claim_id, later, None, release=True).line() == golden["release"]
    for name in ("decision_confirm", "decision_dismiss", "decision_inspect"):
        decision = Decision.from_leaf(json.loads(golden[name]))
        assert decision.line() == golden[name]
    purge = Purge.from_leaf(json.loads(golden["purge"]))
    assert purge.line() == golden["purge"]
    assert TIME_FIELDS == {"alert": "recorded_at", "session": "recorded_at", "purge": "recorded_at",
                           "hold": "at", "release": "at", "decision": "at", "report": "recorded_at",
                           "inspection_claim": "at", "inspection_outcome": "at"}


def test_a_decision_is_refused_with_a_message_naming_what_is_wrong(tmp_path: Path) -> None:
    with EvidenceArchive.open(tmp_path, clock=FixedClock(RECORDED)) as archive:
        claim = archive.record_alert(fixed_alert(3), clip=None, clip_start=None, transcript="t")
        summary = archive.get(claim)
    at = RECORDED
    with pytest.raises(ArchiveError, match=f"decision on evidence {claim}: dismissing a false alert needs a reason"):
        Decision.on(summary, decision="dismiss", by="m", reason="  ", at=at)
    with pytest.raises(ArchiveError, match=r"inspection is for \['precious_metal_claim', 'gem_authenticity_claim'\]"):
        Decision.on(summary, decision="inspect", by="m", reason=None, at=at)
    with pytest.raises(ArchiveError, match="the deciding moderator is not named"):
        Decision.on(summary, decision="confirm", by=" ", reason=None, at=at)
    with pytest.raises(ArchiveError, match=r"decision 'ban' is not one of \['confirm', 'dismiss', 'inspect'\]"):
        Decision.on(summary, decision="ban", by="m", reason=None, at=at)


@dataclass(frozen=True)
class ViewerReport(LogRecord):
    """What a next kind looks like: one small class (here with a stored part)."""

    KINDS: ClassVar[tuple[str, ...]] = ("viewer_report",)
    TIME_FIELD: ClassVar[str] = "at"

    room_id: str
    text: StoredPart
    at: datetime

    def to_leaf(self) -> dict[str, Any]:
        return {"v": 1, "kind": "viewer_report", "room_id": self.room_id, "at": iso_utc(self.at),
                "parts": {"text": self.text.manifest()}}

    def stored_parts(self) -> list[bytes]:
        return [self.text.data]


def test_a_new_record_kind_is_one_class_and_one_append(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Listed in TIME_FIELDS (RECORD_TYPES), a new kind is indexed past, verified, and its blob survives
    crash recovery and is hash-checked, with no change to the writer, the index or verify."""
    monkeypatch.setitem(TIME_FIELDS, "viewer_report", ViewerReport.TIME_FIELD)
    data_dir = tmp_path / "archive"
    report = ViewerReport("r1", StoredPart("主播说能治病".encode(), "text/plain; charset=utf-8"), RECORDED)
    sha = hashlib.sha256(report.text.data).hexdigest()
    archive = EvidenceArchive.open(data_dir, clock=FixedClock(RECORDED))
    archive._log.append(report)
    after = archive.record_alert(fixed_alert(3), clip=None, clip_start=None, transcript="t")
    assert archive.index.applied() == archive.size == 2 and archive.get(after).seq == 1
    archive._log.abandon()  # an unclean stop: recovery keeps what the log references
    with EvidenceArchive.open(data_dir, clock=FixedClock(RECORDED)) as reopened:
        assert reopened.blobs.get(sha) == report.text.data
    assert verify_archive(data_dir).ok
    blob = data_dir / "blobs" / sha[:2] / sha
    blob.chmod(0o644)
    blob.write_bytes(b"altered")
    assert "stored text was altered" in str(verify_archive(data_dir).first_problem)
