"""Typed log records: one small class per leaf kind the archive writes.

Each class holds what one leaf says, typed (datetimes, tuples), and ``to_leaf()``
returns the JSON object appended to ``log/records.log`` (as
:func:`~monitor.archive.records.canonical_json` bytes). The leaves are byte for byte
those the archive wrote before these classes existed (``tests/archive/test_leaves.py``
pins every kind): an evidence id is SHA-256 over the leaf, so a key renamed or a time
formatted otherwise would fork the format.

=====================  ==================  ============================================
class                  ``kind``            written by
=====================  ==================  ============================================
:class:`AlertEvidence`  ``alert``           ``EvidenceArchive.record_alert``
:class:`SessionTranscript` ``session``      ``EvidenceArchive.record_session``
:class:`LegalHold`      ``hold``/``release`` ``EvidenceArchive.hold``
:class:`Decision`       ``decision``        ``EvidenceArchive.record_decision``
:class:`Purge`          ``purge``           ``EvidenceArchive.purge``
:class:`ViewerReport`   ``report``          ``EvidenceArchive.record_report``
:class:`InspectionClaim` ``inspection_claim`` ``EvidenceArchive.record_inspection_claim``
:class:`InspectionOutcome` ``inspection_outcome`` ``EvidenceArchive.record_inspection_outcome``
=====================  ==================  ============================================

A new kind (say a viewer report) is one frozen dataclass here, subclassing
:class:`LogRecord` with its ``KINDS``, ``TIME_FIELD`` and ``to_leaf()`` (plus
``stored_parts()`` when it keeps content in blobs), listed in :data:`RECORD_TYPES`,
and one ``EvidenceLog.append(record)`` call in the archive. The index and ``verify``
accept every listed kind (they check each leaf's time); they index or check more
only for the kinds they know about.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from monitor.archive.records import (
    DECISIONS,
    FORMAT_VERSION,
    INSPECTION_CATEGORIES,
    INSPECTION_OUTCOMES,
    MAX_REASON_CHARS,
    MEDIA_ALERT,
    MEDIA_CLIP,
    MEDIA_REPORT,
    MEDIA_SESSION_TRANSCRIPT,
    MEDIA_TRANSCRIPT,
    canonical_json,
    encode_flac,
    iso_utc,
    parse_iso,
    part,
)
from monitor.errors import ArchiveError

if TYPE_CHECKING:
    from monitor.alerts import Alert
    from monitor.archive.index import EvidenceSummary


class LogRecord:
    """One log entry before it is written; subclasses are frozen dataclasses."""

    KINDS: ClassVar[tuple[str, ...]]
    """The ``kind`` values its leaves carry."""
    TIME_FIELD: ClassVar[str]
    """The leaf field that says when it was written (never earlier than the leaf before)."""

    def to_leaf(self) -> dict[str, Any]:
        """The leaf as a JSON object (metadata and hashes only, never the spoken words)."""
        raise NotImplementedError

    def stored_parts(self) -> list[bytes]:
        """Blob contents to store durably before the leaf is appended (none by default)."""
        return []

    def line(self) -> bytes:
        """The leaf's canonical bytes: one line of ``log/records.log``."""
        return canonical_json(self.to_leaf())


@dataclass(frozen=True)
class ClipTiming:
    """Where a clip sits in the stream: ``start`` seconds, ``sample_rate`` Hz, ``duration`` seconds."""

    start: float | None
    sample_rate: int
    duration: float


@dataclass(frozen=True)
class StoredPart:
    """One part kept as a blob: its bytes and media type (and the clip's timing, for a clip)."""

    data: bytes
    media_type: str
    clip: ClipTiming | None = None

    def manifest(self) -> dict[str, Any]:
        """The leaf's entry for this part: SHA-256, size, type (and the clip's timing)."""
        if self.clip is None:
            return part(self.data, self.media_type)
        return part(self.data, self.media_type, start=self.clip.start, sample_rate=self.clip.sample_rate,
                    duration=self.clip.duration)


def alert_parts(
    alert: Alert, *, clip: np.ndarray | None, clip_start: float | None, sample_rate: int, transcript: str
) -> dict[str, StoredPart]:
    """The stored parts of one alert's evidence: ``alert`` JSON, ``transcript`` text, ``clip`` FLAC.

    ``clip``: float32 mono samples in [-1, 1] (None: no audio, no ``clip`` part);
    ``clip_start``: stream seconds of its first sample. Raises ArchiveError for an
    empty or multi-channel clip. CPU-bound (FLAC encoding): call it before taking locks.
    """
    parts = {
        "alert": StoredPart(canonical_json(alert.wire()), MEDIA_ALERT),
        "transcript": StoredPart(transcript.encode("utf-8"), MEDIA_TRANSCRIPT),
    }
    if clip is not None:
        timing = ClipTiming(clip_start, sample_rate, round(len(clip) / sample_rate, 6))
        parts["clip"] = StoredPart(encode_flac(clip, sample_rate), MEDIA_CLIP, timing)
    return parts


def _manifests(parts: Mapping[str, StoredPart]) -> dict[str, Any]:
    return {role: stored.manifest() for role, stored in parts.items()}


@dataclass(frozen=True)
class AlertEvidence(LogRecord):
    """The evidence of one alert: its metadata, versions, retention and stored parts."""

    KINDS: ClassVar[tuple[str, ...]] = ("alert",)
    TIME_FIELD: ClassVar[str] = "recorded_at"

    alert: Alert
    parts: Mapping[str, StoredPart]
    recorded_at: datetime
    retain_until: datetime

    def to_leaf(self) -> dict[str, Any]:
        alert = self.alert
        return {
            "v": FORMAT_VERSION,
            "kind": "alert",
            "recorded_at": iso_utc(self.recorded_at),
            "retain_until": iso_utc(self.retain_until),
            "alert_id": alert.alert_id,
            "room_id": alert.room_id,
            "anchor_id": alert.anchor_id,
            "category": alert.category,
            "severity": alert.severity,
            "rule_id": alert.rule_id,
            "source": alert.source,
            "start": alert.start,
            "end": alert.end,
            "emitted_at": alert.emitted_at,
            "lexicon_version": alert.lexicon_version,
            "model_version": alert.model_version,
            "parts": _manifests(self.parts),
        }

    def stored_parts(self) -> list[bytes]:
        return [stored.data for stored in self.parts.values()]


def session_transcript_part(session_id: str, segments: list[dict[str, Any]]) -> StoredPart:
    """A session's final transcript (JSON segments) as a stored part; ArchiveError if not JSON-serialisable."""
    try:
        data = canonical_json(segments)
    except (TypeError, ValueError) as exc:
        raise ArchiveError(f"session {session_id}: transcript is not JSON-serialisable: {exc}") from exc
    return StoredPart(data, MEDIA_SESSION_TRANSCRIPT)


@dataclass(frozen=True)
class SessionTranscript(LogRecord):
    """One room session's final transcript; ``covers``: the alert evidence ids whose retention it extends."""

    KINDS: ClassVar[tuple[str, ...]] = ("session",)
    TIME_FIELD: ClassVar[str] = "recorded_at"

    session_id: str
    room_id: str
    anchor_id: str | None
    started_at: datetime
    ended_at: datetime
    covers: tuple[str, ...]
    transcript: StoredPart
    recorded_at: datetime
    retain_until: datetime

    def to_leaf(self) -> dict[str, Any]:
        return {
            "v": FORMAT_VERSION,
            "kind": "session",
            "recorded_at": iso_utc(self.recorded_at),
            "retain_until": iso_utc(self.retain_until),
            "session_id": self.session_id,
            "room_id": self.room_id,
            "anchor_id": self.anchor_id,
            "started_at": iso_utc(self.started_at),
            "ended_at": iso_utc(self.ended_at),
            "covers": list(self.covers),
            "parts": _manifests({"transcript": self.transcript}),
        }

    def stored_parts(self) -> list[bytes]:
        return [self.transcript.data]


@dataclass(frozen=True)
class LegalHold(LogRecord):
    """A legal hold placed on (``release=False``) or lifted from one record."""

    KINDS: ClassVar[tuple[str, ...]] = ("hold", "release")
    TIME_FIELD: ClassVar[str] = "at"

    evidence_id: str
    at: datetime
    reason: str | None
    release: bool = False

    def to_leaf(self) -> dict[str, Any]:
        return {
            "v": FORMAT_VERSION,
            "kind": "release" if self.release else "hold",
            "evidence_id": self.evidence_id,
            "at": iso_utc(self.at),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Decision(LogRecord):
    """A moderator's decision on one alert record (the latest on a record is the one in force)."""

    KINDS: ClassVar[tuple[str, ...]] = ("decision",)
    TIME_FIELD: ClassVar[str] = "at"

    evidence_id: str
    alert_id: str | None
    room_id: str | None
    anchor_id: str | None
    category: str | None
    severity: str | None
    decision: str
    reason: str | None
    by: str
    at: datetime

    @classmethod
    def on(cls, record: EvidenceSummary, *, decision: str, by: str, reason: str | None, at: datetime) -> Decision:
        """The decision ``decision`` by moderator ``by`` on ``record`` (an index summary of an alert).

        ``reason`` is stripped (blank means none). Raises ArchiveError naming what is wrong:
        not an alert record, purged, unknown decision, dismiss without a reason, a reason
        over MAX_REASON_CHARS, inspect outside purity/gem claims, no moderator.
        """
        where = f"decision on evidence {record.evidence_id}"
        if record.kind != "alert":
            raise ArchiveError(f"{where}: it is a {record.kind} record; only alerts are decided")
        if record.purged_at is not None:
            raise ArchiveError(f"{where}: its content was purged at {record.purged_at}")
        if decision not in DECISIONS:
            raise ArchiveError(f"{where}: decision {decision!r} is not one of {list(DECISIONS)}")
        reason = (reason or "").strip() or None
        if decision == "dismiss" and reason is None:
            raise ArchiveError(f"{where}: dismissing a false alert needs a reason")
        if reason is not None and len(reason) > MAX_REASON_CHARS:
            raise ArchiveError(f"{where}: reason is {len(reason)} characters, more than {MAX_REASON_CHARS}")
        if decision == "inspect" and record.category not in INSPECTION_CATEGORIES:
            raise ArchiveError(f"{where}: inspection is for {list(INSPECTION_CATEGORIES)}, not {record.category!r}")
        if not by.strip():
            raise ArchiveError(f"{where}: the deciding moderator is not named")
        return cls(
            evidence_id=record.evidence_id, alert_id=record.alert_id, room_id=record.room_id,
            anchor_id=record.anchor_id, category=record.category, severity=record.severity,
            decision=decision, reason=reason, by=by.strip(), at=at,
        )

    @classmethod
    def from_leaf(cls, leaf: Mapping[str, Any]) -> Decision:
        """The decision a ``decision`` leaf records; ArchiveError when a field is missing or mangled."""
        try:
            return cls(
                evidence_id=leaf["evidence_id"], alert_id=leaf["alert_id"], room_id=leaf["room_id"],
                anchor_id=leaf["anchor_id"], category=leaf["category"], severity=leaf["severity"],
                decision=leaf["decision"], reason=leaf["reason"], by=leaf["by"], at=parse_iso(leaf["at"]),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ArchiveError(f"decision leaf lacks or mangles field {exc}") from exc

    def to_leaf(self) -> dict[str, Any]:
        return {
            "v": FORMAT_VERSION,
            "kind": "decision",
            "evidence_id": self.evidence_id,
            "alert_id": self.alert_id,
            "room_id": self.room_id,
            "anchor_id": self.anchor_id,
            "category": self.category,
            "severity": self.severity,
            "decision": self.decision,
            "reason": self.reason,
            "by": self.by,
            "at": iso_utc(self.at),
        }


@dataclass(frozen=True)
class Purge(LogRecord):
    """Records whose content was deleted after retention: ``at`` the cut-off, ``blobs`` the files removed.

    Written before the blobs are deleted, so an interrupted purge is finished by crash recovery.
    """

    KINDS: ClassVar[tuple[str, ...]] = ("purge",)
    TIME_FIELD: ClassVar[str] = "recorded_at"

    at: datetime
    recorded_at: datetime
    evidence_ids: tuple[str, ...]
    blobs: tuple[str, ...]

    @classmethod
    def from_leaf(cls, leaf: Mapping[str, Any]) -> Purge:
        """The purge a ``purge`` leaf records; ArchiveError when a field is missing or mangled."""
        try:
            return cls(at=parse_iso(leaf["at"]), recorded_at=parse_iso(leaf["recorded_at"]),
                       evidence_ids=tuple(leaf["evidence_ids"]), blobs=tuple(leaf["blobs"]))
        except (KeyError, TypeError, AttributeError) as exc:
            raise ArchiveError(f"purge leaf lacks or mangles field {exc}") from exc

    def to_leaf(self) -> dict[str, Any]:
        return {
            "v": FORMAT_VERSION,
            "kind": "purge",
            "at": iso_utc(self.at),
            "recorded_at": iso_utc(self.recorded_at),
            "evidence_ids": sorted(self.evidence_ids),
            "blobs": sorted(self.blobs),
        }


@dataclass(frozen=True)
class ViewerReport(LogRecord):
    """A viewer's report of a room, relayed by the platform (``POST /v1/reports``).

    The leaf holds where the report sits (room, anchor, session, ``stream_time`` seconds and
    how it was ``placed``: ``stream_time`` as reported, ``live`` at the room's stream time on
    arrival, ``received`` at reception with no stream time) and when; the viewer's id and
    words are in the stored ``report`` part, so a purge removes them. Its id (``report_id``)
    is the evidence id: 32 hex digits of SHA-256 over the leaf.
    """

    KINDS: ClassVar[tuple[str, ...]] = ("report",)
    TIME_FIELD: ClassVar[str] = "recorded_at"

    room_id: str
    anchor_id: str | None
    session_id: str | None
    stream_time: float | None
    placed: str
    reported_at: datetime
    category: str | None
    content: StoredPart
    recorded_at: datetime
    retain_until: datetime

    def to_leaf(self) -> dict[str, Any]:
        return {
            "v": FORMAT_VERSION,
            "kind": "report",
            "recorded_at": iso_utc(self.recorded_at),
            "retain_until": iso_utc(self.retain_until),
            "room_id": self.room_id,
            "anchor_id": self.anchor_id,
            "session_id": self.session_id,
            "stream_time": self.stream_time,
            "placed": self.placed,
            "reported_at": iso_utc(self.reported_at),
            "category": self.category,
            "parts": _manifests({"report": self.content}),
        }

    def stored_parts(self) -> list[bytes]:
        return [self.content.data]


def report_part(*, viewer_id: str, reason: str) -> StoredPart:
    """The stored part of a viewer report: who reported and what they said (canonical JSON)."""
    return StoredPart(canonical_json({"reason": reason, "viewer_id": viewer_id}), MEDIA_REPORT)


@dataclass(frozen=True)
class InspectionClaim(LogRecord):
    """One purity or gem claim (an ``info`` alert record) put on an inspection ticket.

    The first claim of a ticket opens it; later claims on the same product in the same
    session join it while it is open. ``product``/``room_category`` come from the room's
    ``start.context``; the words spoken stay in the alert's own stored parts.
    """

    KINDS: ClassVar[tuple[str, ...]] = ("inspection_claim",)
    TIME_FIELD: ClassVar[str] = "at"

    ticket_id: str
    evidence_id: str
    alert_id: str | None
    room_id: str | None
    anchor_id: str | None
    session_id: str | None
    category: str | None
    severity: str | None
    product: str | None
    room_category: str | None
    at: datetime

    @classmethod
    def on(
        cls, record: EvidenceSummary, *, ticket_id: str, session_id: str | None, product: str | None,
        room_category: str | None, at: datetime,
    ) -> InspectionClaim:
        """The claim of alert ``record`` on ticket ``ticket_id``; ArchiveError unless it is an
        alert record of a purity/gem category, not purged."""
        where = f"inspection claim of evidence {record.evidence_id}"
        if record.kind != "alert":
            raise ArchiveError(f"{where}: it is a {record.kind} record; only alerts are inspected")
        if record.purged_at is not None:
            raise ArchiveError(f"{where}: its content was purged at {record.purged_at}")
        if record.category not in INSPECTION_CATEGORIES:
            raise ArchiveError(f"{where}: inspection is for {list(INSPECTION_CATEGORIES)}, not {record.category!r}")
        return cls(
            ticket_id=ticket_id, evidence_id=record.evidence_id, alert_id=record.alert_id, room_id=record.room_id,
            anchor_id=record.anchor_id, session_id=session_id, category=record.category, severity=record.severity,
            product=product, room_category=room_category, at=at,
        )

    def to_leaf(self) -> dict[str, Any]:
        return {
            "v": FORMAT_VERSION,
            "kind": "inspection_claim",
            "ticket_id": self.ticket_id,
            "evidence_id": self.evidence_id,
            "alert_id": self.alert_id,
            "room_id": self.room_id,
            "anchor_id": self.anchor_id,
            "session_id": self.session_id,
            "category": self.category,
            "severity": self.severity,
            "product": self.product,
            "room_category": self.room_category,
            "at": iso_utc(self.at),
        }


@dataclass(frozen=True)
class InspectionOutcome(LogRecord):
    """An inspector's outcome on a ticket: the goods are ``consistent`` with what was claimed or
    ``inconsistent``; ``certificate`` (its number) and ``note`` optional. The latest is in force."""

    KINDS: ClassVar[tuple[str, ...]] = ("inspection_outcome",)
    TIME_FIELD: ClassVar[str] = "at"

    ticket_id: str
    room_id: str | None
    anchor_id: str | None
    product: str | None
    outcome: str
    certificate: str | None
    note: str | None
    by: str
    at: datetime

    def __post_init__(self) -> None:
        where = f"inspection outcome on ticket {self.ticket_id}"
        if self.outcome not in INSPECTION_OUTCOMES:
            raise ArchiveError(f"{where}: outcome {self.outcome!r} is not one of {list(INSPECTION_OUTCOMES)}")
        for name, text in (("certificate", self.certificate), ("note", self.note)):
            if text is not None and len(text) > MAX_REASON_CHARS:
                raise ArchiveError(f"{where}: {name} is {len(text)} characters, more than {MAX_REASON_CHARS}")
        if not self.by.strip():
            raise ArchiveError(f"{where}: the inspector is not named")

    def to_leaf(self) -> dict[str, Any]:
        return {
            "v": FORMAT_VERSION,
            "kind": "inspection_outcome",
            "ticket_id": self.ticket_id,
            "room_id": self.room_id,
            "anchor_id": self.anchor_id,
            "product": self.product,
            "outcome": self.outcome,
            "certificate": self.certificate,
            "note": self.note,
            "by": self.by,
            "at": iso_utc(self.at),
        }


RECORD_TYPES: tuple[type[LogRecord], ...] = (
    AlertEvidence, SessionTranscript, LegalHold, Decision, Purge, ViewerReport, InspectionClaim, InspectionOutcome,
)
"""Every record class the archive writes."""

EVIDENCE_KINDS = ("alert", "session", "report")
"""Kinds whose leaf hash names the record (its evidence id): they can be looked up, held and purged."""


TIME_FIELDS: dict[str, str] = {kind: cls.TIME_FIELD for cls in RECORD_TYPES for kind in cls.KINDS}
"""Leaf kind -> the field saying when it was written (never earlier than the leaf before)."""


def leaf_time(line: bytes) -> datetime | None:
    """When a log leaf was written (its kind's TIME_FIELD), or None if it does not say."""
    try:
        leaf = json.loads(line)
        text = leaf.get(TIME_FIELDS.get(leaf.get("kind"), ""), None)
    except (ValueError, AttributeError):
        return None
    if not isinstance(text, str):
        return None
    try:
        return parse_iso(text)
    except ArchiveError:
        return None
