"""The evidence archive: durable, content-addressed, Merkle-logged, signed, retained.

Call it like this (the live server does, from worker threads)::

    archive = EvidenceArchive.open(settings.data_dir)          # recovers after a crash
    evidence_id = archive.record_alert(alert, clip=samples, clip_start=12.3,
                                       transcript="...")       # durable when it returns
    alert.evidence_id = evidence_id
    archive.record_session(session_id=..., room_id=..., anchor_id=..., transcript=[...],
                           started_at=..., ended_at=...)
    archive.close()

A moderator's decision on an alert (``record_decision``) is a log record too, so it
is covered by the same signed checkpoints and checked by ``verify``.

One commit (one ``record_*``, ``hold``, ``release`` or ``purge``) is:
stored parts written (temp, fsync, rename, fsync dir) -> leaf appended to
``log/records.log`` and fsynced -> a checkpoint over the new tree signed and
appended to ``log/checkpoints.log`` and fsynced -> index row committed. A record is
acknowledged (the call returns) only after the checkpoint is durable; on any
failure the log files are cut back to their previous length and the new blobs
removed, and :class:`ArchiveWriteError` names the path and the OS error.

The record log is the only truth; the SQLite index and the stored tree hashes are
derived from it. On open (:mod:`monitor.archive.recovery`) anything the log holds
beyond the last checkpoint (an unacknowledged tail) is cut off, the tree hashes are
checked against the log, the index is checked (``quick_check``), rebuilt if damaged
and replayed from the log, and after an unclean shutdown (``DIRTY`` marker present)
temp files and blobs the *log* no longer references are removed. After every commit
the index is replayed from wherever it stopped, so a failed index write is made good
by the next one; holds and purges are decided only once the index has every leaf.

Times never go back: a leaf's ``recorded_at``/``at`` and a checkpoint's signed time
are at least the previous ones (a clock stepped back is logged and recorded in the
checkpoint line as ``observed_skew_s``). Methods are thread-safe; one process at a
time may have the archive open for writing (``writer.lock``).

:class:`EvidenceArchive` is the API over four parts: the typed leaves
(:mod:`monitor.archive.leaves`), the log writer with its locks, recovery and index
sync (:mod:`monitor.archive.evidence_log`), the retention policy, holds and purges
(:mod:`monitor.archive.retention`) and the reads (:mod:`monitor.archive.reads`). A new
kind of record is a class in ``leaves`` and one method here that appends it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from monitor.alerts import Alert
from monitor.archive.evidence_log import EvidenceLog
from monitor.archive.index import EvidenceIndex, EvidenceSummary
from monitor.archive.layout import ArchiveLayout
from monitor.archive.leaves import (
    AlertEvidence,
    Decision,
    InspectionClaim,
    InspectionOutcome,
    SessionTranscript,
    ViewerReport,
    alert_parts,
    report_part,
    session_transcript_part,
)
from monitor.archive.reads import ArchiveReader
from monitor.archive.records import check_retention_years, evidence_id_of, iso_utc
from monitor.archive.retention import PurgeResult, RetentionPolicy
from monitor.archive.signing import Checkpoint
from monitor.archive.store import LocalBlobStore
from monitor.archive.tree import TreeStore
from monitor.archive.writer import LogWriter
from monitor.errors import ArchiveError, ArchiveIntegrityError, ArchiveWriteError

# The errors stay importable from here, as before the split.
__all__ = ["ArchiveError", "ArchiveIntegrityError", "ArchiveWriteError", "EvidenceArchive", "PurgeResult"]

log = logging.getLogger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class EvidenceArchive:
    """A writable evidence archive in one data directory; build it with :meth:`open`."""

    def __init__(self, evidence_log: EvidenceLog, retention_years: int) -> None:
        self._log = evidence_log
        self._lock = evidence_log.lock  # every decision and write of this process, re-entrant
        self.layout: ArchiveLayout = evidence_log.layout
        self.retention = RetentionPolicy(evidence_log, retention_years)
        self.reader = ArchiveReader(evidence_log)

    @classmethod
    def open(
        cls,
        data_dir: Path,
        *,
        retention_years: int = 3,
        clock: Callable[[], datetime] | None = None,
        signing_key: Path | None = None,
    ) -> EvidenceArchive:
        """Open (creating if needed) the archive in ``data_dir`` and recover from any crash.

        ``retention_years`` below 3 raises ArchiveError (it may only be raised).
        ``clock`` returns the current UTC time (tests inject one). ``signing_key``: a
        key file outside the data dir (``MONITOR_SIGNING_KEY``), mode 0600. Raises
        ArchiveKeyError when the signing key is missing for an archive that had one,
        exposed, or not the archive's; ArchiveError if another process has the archive
        open for writing; ArchiveIntegrityError if the log no longer matches its latest
        checkpoint. A damaged index never stops it: the index is rebuilt from the log.
        """
        check_retention_years(retention_years)
        layout = ArchiveLayout(Path(data_dir))
        return cls(EvidenceLog.open(layout, clock=clock or _utc_now, signing_key=signing_key), retention_years)

    # ---- writing ---------------------------------------------------------------------------

    def record_alert(
        self,
        alert: Alert,
        *,
        clip: np.ndarray | None,
        clip_start: float | None,
        sample_rate: int = 16000,
        transcript: str,
        retain_from: datetime | None = None,
    ) -> str:
        """Durably store evidence for one alert and return its evidence id.

        ``clip``: float32 mono samples in [-1, 1] of the utterance with about one
        second of context either side (None when no audio is available);
        ``clip_start``: stream seconds of the clip's first sample; ``transcript``:
        the text heard; ``retain_from``: when the retention period starts (end of
        the stream; default now); a later :meth:`record_session` of the same
        room extends it to the session's end. The stored alert JSON is the alert
        as given (its ``evidence_id`` is normally still null: the id is derived
        from the record). Raises ArchiveWriteError; nothing is acknowledged then.
        """
        parts = alert_parts(alert, clip=clip, clip_start=clip_start, sample_rate=sample_rate, transcript=transcript)
        with self._lock:
            now = self._log.now()
            evidence = AlertEvidence(alert, parts, now, self.retention.retain_until(now, retain_from))
            (line,) = self._log.append(evidence)
        return evidence_id_of(line)

    def record_session(
        self,
        *,
        session_id: str,
        room_id: str,
        anchor_id: str | None,
        transcript: list[dict[str, Any]],
        started_at: datetime,
        ended_at: datetime,
    ) -> str:
        """Durably store one room session's final transcript; returns its evidence id.

        ``transcript``: the committed segments (JSON-serialisable dicts, e.g.
        ``{"start": s, "end": s, "text": ...}``). Retention runs to ``ended_at`` +
        retention years, and the session extends the retention of the room's alerts
        recorded since ``started_at`` to the same date. Raises ArchiveError for a
        transcript that is not JSON-serialisable, ArchiveWriteError when not stored.
        """
        stored = session_transcript_part(session_id, transcript)
        with self._lock:
            now = self._log.now()
            try:
                covers = self._log.index.uncovered_alerts(room_id, iso_utc(started_at))
            except ArchiveError as exc:
                # The transcript matters more than extending its alerts' retention (each keeps >= 3 years).
                log.error("session %s: alerts to cover unknown (%s); recorded without covers", session_id, exc)
                covers = []
            session = SessionTranscript(
                session_id=session_id, room_id=room_id, anchor_id=anchor_id, started_at=started_at,
                ended_at=ended_at, covers=tuple(covers), transcript=stored, recorded_at=now,
                retain_until=self.retention.retain_until(now, ended_at),
            )
            (line,) = self._log.append(session)
        return evidence_id_of(line)

    def record_decision(
        self,
        evidence_id: str,
        *,
        decision: str,
        by: str,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """Durably append a moderator's decision on one alert record; returns the decision leaf.

        ``decision`` is one of :data:`~monitor.archive.records.DECISIONS` (``confirm``: a
        violation; ``dismiss``: a false alert, ``reason`` required; ``inspect``: the goods go
        to inspection, only for purity and gem claims); ``by`` names the moderator. A later
        decision on the same record supersedes the earlier one (both stay in the log).
        The leaf's ``decision_id`` is the first 32 hex digits of SHA-256 over its bytes.
        Raises ArchiveError for an unknown or purged record or an invalid decision, and
        ArchiveWriteError when it could not be stored.
        """
        with self._lock:
            record = self.reader.require(evidence_id)
            entry = Decision.on(record, decision=decision, by=by, reason=reason, at=self._log.now())
            (line,) = self._log.append(entry)
        return {**entry.to_leaf(), "decision_id": evidence_id_of(line)}

    def record_report(
        self,
        *,
        room_id: str,
        anchor_id: str | None,
        session_id: str | None,
        stream_time: float | None,
        placed: str,
        reported_at: datetime,
        viewer_id: str,
        reason: str,
        category: str | None,
    ) -> str:
        """Durably store a viewer's report of a room; returns its id (the evidence id, 32 hex digits).

        ``stream_time``: seconds of the room session ``session_id`` the report is about (None when
        it was placed at reception, ``placed="received"``); ``reported_at``: when the viewer
        reported it. The viewer's id and words go to a stored part (purged with the record); the
        report is kept for the retention years from now. Raises ArchiveWriteError when not stored.
        """
        content = report_part(viewer_id=viewer_id, reason=reason)
        with self._lock:
            now = self._log.now()
            record = ViewerReport(
                room_id=room_id, anchor_id=anchor_id, session_id=session_id, stream_time=stream_time,
                placed=placed, reported_at=reported_at, category=category, content=content, recorded_at=now,
                retain_until=self.retention.retain_until(now, None),
            )
            (line,) = self._log.append(record)
        return evidence_id_of(line)

    def record_inspection_claim(
        self, evidence_id: str, *, session_id: str | None, product: str | None, room_category: str | None
    ) -> dict[str, Any]:
        """Put the purity/gem alert record ``evidence_id`` on the open inspection ticket of ``product``
        in room session ``session_id``, opening a ticket when there is none; returns the claim leaf
        (its ``ticket_id`` names the ticket). Raises ArchiveError for an unknown, purged or
        other-category record, ArchiveWriteError when not stored.
        """
        with self._lock:
            record = self.reader.require(evidence_id)
            ticket_id = self._log.index.open_ticket(session_id, product) or uuid.uuid4().hex
            claim = InspectionClaim.on(
                record, ticket_id=ticket_id, session_id=session_id, product=product, room_category=room_category,
                at=self._log.now(),
            )
            self._log.append(claim)
        return claim.to_leaf()

    def record_inspection_outcome(
        self, ticket_id: str, *, outcome: str, by: str, certificate: str | None = None, note: str | None = None
    ) -> dict[str, Any]:
        """Durably append an inspector's outcome (``consistent``/``inconsistent``) on a ticket; the
        leaf with its ``outcome_id``. A later outcome supersedes an earlier one (both stay in the log).
        Raises ArchiveError for an unknown ticket or an invalid outcome, ArchiveWriteError when not stored.
        """
        with self._lock:
            ticket = self.reader.ticket(ticket_id)
            if ticket is None:
                raise ArchiveError(f"no inspection ticket with id {ticket_id!r} in {self.layout.root}")
            entry = InspectionOutcome(
                ticket_id=ticket_id, room_id=ticket["room_id"], anchor_id=ticket["anchor_id"],
                product=ticket["product"], outcome=outcome, certificate=(certificate or "").strip() or None,
                note=(note or "").strip() or None, by=by.strip(), at=self._log.now(),
            )
            (line,) = self._log.append(entry)
        return {**entry.to_leaf(), "outcome_id": evidence_id_of(line)}

    def hold(self, evidence_id: str, *, reason: str | None = None, release: bool = False) -> None:
        """Place (or with ``release`` lift) a legal hold; a held record is never purged."""
        self.retention.hold(evidence_id, reason=reason, release=release)

    def purge(self, *, now: datetime | None = None, evidence_ids: list[str] | None = None) -> PurgeResult:
        """Delete the stored content of records past ``retain_until`` and not on hold.

        ``now`` (default: the clock) may lie before the clock but not after it (nor after
        the last recorded time). Decided only once the index holds every log leaf (it is
        replayed or rebuilt from the log first; ArchiveError if that fails).
        With ``evidence_ids``, purges exactly those and refuses (ArchiveError) if
        any is within retention, held or unknown. The purge is itself a log
        record; leaves and Merkle hashes stay, so ``verify`` still checks the chain.
        """
        return self.retention.purge(now=now, evidence_ids=evidence_ids)

    # ---- reading (see ArchiveReader) ---------------------------------------------------------

    def get(self, evidence_id: str) -> EvidenceSummary:
        """The index entry of one record; raises ArchiveError if unknown."""
        return self.reader.require(evidence_id)

    def read_part(self, evidence_id: str, role: str) -> bytes:
        """The stored bytes of one part (``alert``, ``transcript``, ``clip``) after checking its hash."""
        return self.reader.read_part(evidence_id, role)

    def find(self, **filters: Any) -> list[EvidenceSummary]:
        """Look records up by ``room_id``, ``anchor_id``, ``category``, ``kind``, ``since``/``until``
        (UTC ISO strings on the alert's ``emitted_at`` or the session's start) and ``limit``."""
        return self.reader.find(**filters)

    def decisions(self, evidence_id: str) -> list[dict[str, Any]]:
        """Every decision on one record, oldest first (the last one is in force)."""
        return self.reader.decisions(evidence_id)

    def anchor_record(self, *, bucket: str = "day", since: str | None = None) -> list[dict[str, Any]]:
        """Alerts and decisions in force per anchor and ``day``/``hour`` bucket (see EvidenceIndex)."""
        return self.reader.anchor_record(bucket=bucket, since=since)

    def labeled_decisions(self) -> list[dict[str, Any]]:
        """Confirmed and dismissed alerts as labeled examples (monitor.archive.decisions)."""
        return self.reader.labeled_decisions()

    def reports(self, **filters: Any) -> list[dict[str, Any]]:
        """Viewer reports, newest first, by ``room_id``, ``session_id``, ``sessionless`` and ``limit``."""
        return self.reader.reports(**filters)

    def tickets(self, *, status: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Inspection tickets, newest first (``status``: ``open``, ``closed`` or None for both)."""
        return self.reader.tickets(status=status, limit=limit)

    def ticket(self, ticket_id: str) -> dict[str, Any] | None:
        """One inspection ticket with its claims and outcomes, or None."""
        return self.reader.ticket(ticket_id)

    def proof_status(self, evidence_id: str) -> dict[str, Any]:
        """Whether a record is committed: its leaf index, record hash and inclusion in the signed tree.

        The RFC 6962 inclusion proof comes from the stored tree hashes (O(log n) reads,
        milliseconds at 10 million records) and is checked against the latest signed
        checkpoint before it is returned; stored hashes that do not lead to the signed
        root are rebuilt from the log first. Raises ArchiveError for an unknown id and
        ArchiveIntegrityError when the log does not hold the record the index names.
        """
        return self.reader.proof_status(evidence_id)

    def checkpoint_text(self) -> str:
        """The latest checkpoint as a C2SP signed note (what ``monitor archive checkpoint`` prints)."""
        return self.reader.checkpoint_text()

    @property
    def retention_years(self) -> int:
        """Years every record is kept past its ``retain_from`` (at least 3)."""
        return self.retention.years

    @property
    def size(self) -> int:
        """Number of leaves in the log (every kind)."""
        return self._log.writer.size

    @property
    def last_checkpoint(self) -> Checkpoint | None:
        """The latest signed checkpoint (None for an empty archive)."""
        return self._log.writer.last_checkpoint

    @property
    def index(self) -> EvidenceIndex:
        """The look-up index (derived from the log; replaced when it is rebuilt)."""
        return self._log.index

    @property
    def writer(self) -> LogWriter:
        """The durable commit protocol under this archive's log."""
        return self._log.writer

    @property
    def blobs(self) -> LocalBlobStore:
        """The stored parts."""
        return self._log.blobs

    @property
    def tree_store(self) -> TreeStore:
        """The stored tree hashes (derived from the log)."""
        return self._log.writer.tree_store

    # ---- closing ---------------------------------------------------------------------------

    def close(self) -> None:
        """Release files and locks; a clean close removes the ``DIRTY`` marker."""
        self._log.close()

    def __enter__(self) -> EvidenceArchive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
