"""The read side of an open archive: index look-ups, stored parts, decisions and proofs.

:class:`ArchiveReader` answers from the index (derived from the log, kept up to date by
:class:`~monitor.archive.evidence_log.EvidenceLog`) and the blobs, and proves records
from the stored tree hashes against the latest signed checkpoint. It never writes
(except that a stored tree hash found not to lead to the signed root is rebuilt from
the log). Each look-up takes the log's lock, so it sees a whole commit or none of it.
Processes that only read (``monitor archive verify/export/list``, the console's
exports) open the index read-only instead: :mod:`monitor.archive.decisions`,
:mod:`monitor.archive.export`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from monitor.archive.evidence_log import EvidenceLog
from monitor.archive.index import EvidenceSummary
from monitor.archive.merkle import leaf_hash
from monitor.archive.proofs import proof_document
from monitor.archive.records import evidence_id_of
from monitor.errors import ArchiveError, ArchiveIntegrityError


class ArchiveReader:
    """Reads of one open log (thread-safe)."""

    def __init__(self, evidence_log: EvidenceLog) -> None:
        self._log = evidence_log

    def require(self, evidence_id: str) -> EvidenceSummary:
        """The index entry of one alert or session record; ArchiveError if unknown."""
        with self._log.lock:
            record = self._log.index.get(evidence_id)
        if record is None:
            raise ArchiveError(f"no evidence with id {evidence_id!r} in {self._log.layout.root}")
        return record

    def read_part(self, evidence_id: str, role: str) -> bytes:
        """The stored bytes of one part (``alert``, ``transcript``, ``clip``) after checking its hash."""
        with self._log.lock:
            record = self.require(evidence_id)
            parts = self._log.index.parts(evidence_id)
        if role not in parts:
            raise ArchiveError(f"evidence {evidence_id} has no part {role!r} (has {sorted(parts)})")
        if record.purged_at is not None:
            raise ArchiveError(f"evidence {evidence_id} was purged at {record.purged_at}")
        data = self._log.blobs.get(parts[role]["sha256"])
        if hashlib.sha256(data).hexdigest() != parts[role]["sha256"]:
            raise ArchiveIntegrityError(f"evidence {evidence_id}: stored {role} does not match its hash")
        return data

    def find(self, **filters: Any) -> list[EvidenceSummary]:
        """Records by ``room_id``, ``anchor_id``, ``category``, ``kind``, ``since``/``until`` and ``limit``."""
        with self._log.lock:
            return self._log.index.find(**filters)

    def decisions(self, evidence_id: str) -> list[dict[str, Any]]:
        """Every decision on one record, oldest first (the last one is in force)."""
        with self._log.lock:
            return self._log.index.decisions(evidence_id)

    def anchor_record(self, *, bucket: str = "day", since: str | None = None) -> list[dict[str, Any]]:
        """Alerts and decisions in force per anchor and ``day``/``hour`` bucket (see EvidenceIndex)."""
        with self._log.lock:
            return self._log.index.anchor_record(bucket=bucket, since=since)

    def labeled_decisions(self) -> list[dict[str, Any]]:
        """Confirmed and dismissed alerts as labeled examples (monitor.archive.decisions)."""
        from monitor.archive.decisions import labeled_decisions

        with self._log.lock:
            return list(labeled_decisions(self._log.index, self._log.layout.blob_dir))

    def reports(self, **filters: Any) -> list[dict[str, Any]]:
        """Viewer reports, newest first (see :meth:`EvidenceIndex.reports`)."""
        with self._log.lock:
            return self._log.index.reports(**filters)

    def tickets(self, *, status: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Inspection tickets, newest first (see :meth:`EvidenceIndex.tickets`)."""
        with self._log.lock:
            return self._log.index.tickets(status=status, limit=limit)

    def ticket(self, ticket_id: str) -> dict[str, Any] | None:
        """One inspection ticket with its claims and outcomes, or None."""
        with self._log.lock:
            return self._log.index.ticket(ticket_id)

    def latest_sessions(self, room_id: str, limit: int) -> list[EvidenceSummary]:
        """The room's last ``limit`` session records, oldest first."""
        with self._log.lock:
            return self._log.index.latest_sessions(room_id, limit)

    def session_record(self, session_id: str) -> EvidenceSummary | None:
        """The archived record of room session ``session_id``, or None (still live, or never archived)."""
        with self._log.lock:
            return self._log.index.session_record(session_id)

    def uncovered_alerts(self, room_id: str, since: str = "") -> list[str]:
        """Evidence ids of the room's alert records no session record covers yet (its session is
        still live, or was lost), oldest first."""
        with self._log.lock:
            return self._log.index.uncovered_alerts(room_id, since)

    def session_alerts(self, session_record_id: str) -> list[EvidenceSummary]:
        """The alert records of the session whose record is ``session_record_id``, oldest first."""
        with self._log.lock:
            return self._log.index.session_alerts(session_record_id)

    def proof_status(self, evidence_id: str) -> dict[str, Any]:
        """Whether a record is committed: its leaf index, record hash and inclusion in the signed tree.

        The RFC 6962 inclusion proof comes from the stored tree hashes (O(log n) reads)
        and is checked against the latest signed checkpoint before it is returned.
        Raises ArchiveError for an unknown id and ArchiveIntegrityError when the log does
        not hold the record the index names.
        """
        evidence_log = self._log
        with evidence_log.lock:
            summary = self.require(evidence_id)
            record = evidence_log.writer.read_record(summary.seq)
            if evidence_id_of(record) != evidence_id:
                raise ArchiveIntegrityError(
                    f"record #{summary.seq} of {evidence_log.layout.records_log} is not evidence {evidence_id}; "
                    "run 'monitor archive verify'"
                )
            leaf = leaf_hash(record)
            path, checkpoint = evidence_log.writer.inclusion(summary.seq, leaf)
            document = proof_document(evidence_id, summary.seq, record, leaf, path, checkpoint,
                                      evidence_log.key.public_key())
        purged = {"at": summary.purged_at} if summary.purged_at else None
        return {**document, "purged": purged, "record": json.loads(record)}

    def checkpoint_text(self) -> str:
        """The latest checkpoint as a C2SP signed note (what ``monitor archive checkpoint`` prints)."""
        with self._log.lock:
            checkpoint = self._log.writer.last_checkpoint
        if checkpoint is None:
            raise ArchiveError(f"the archive {self._log.layout.root} has no signed checkpoint yet")
        return checkpoint.text()
