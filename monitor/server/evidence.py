"""The server's door to the evidence archive: serialised writes, failures counted, never raised.

An alert must reach the anchor even when the disk is full, so :class:`EvidenceWriter`
turns an archive failure into ``evidence_id = None`` plus a logged error and a count in
``monitor_archive_errors_total``. With no archive at all (it failed to open at start-up)
every write counts as an error the same way.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from monitor.alerts import Alert
from monitor.asr.audio import SAMPLE_RATE
from monitor.errors import ArchiveError
from monitor.server.metrics import ServerMetrics

if TYPE_CHECKING:
    from monitor.archive import EvidenceArchive
    from monitor.archive.index import EvidenceSummary

log = logging.getLogger(__name__)

REPLAY_SLACK_ALERTS = 64
"""Extra index rows read by a ``since=`` replay beyond the alerts it sends (see ``alerts_after``)."""


class EvidenceWriter:
    """Thread-safe wrapper over one :class:`EvidenceArchive` (or ``None`` when unavailable)."""

    def __init__(
        self, archive: EvidenceArchive | None, metrics: ServerMetrics, *, why_missing: str = ""
    ) -> None:
        self._archive = archive
        self._metrics = metrics
        self._why_missing = why_missing
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        return self._archive is not None

    @property
    def why_missing(self) -> str:
        """Why there is no archive (empty when there is one)."""
        return "" if self._archive is not None else self._why_missing

    def attach(self, archive: EvidenceArchive) -> None:
        """The archive opened (after failing at start-up): later writes go to it."""
        with self._lock:
            self._archive = archive
            self._why_missing = ""

    def set_missing(self, why: str) -> None:
        """Record why the archive is still unavailable (the latest failed attempt)."""
        if self._archive is None:
            self._why_missing = why

    def record_alert(
        self,
        alert: Alert,
        *,
        clip: np.ndarray | None,
        clip_start: float | None,
        transcript: str,
        fence: tuple[str, int] | None = None,
    ) -> str | None:
        """Archive ``alert`` with its 16 kHz evidence ``clip``; the evidence id, or None on failure."""
        if self._archive is None:
            self._metrics.archive_errors.inc()
            log.error("alert %s not archived: archive unavailable (%s)", alert.alert_id, self._why_missing)
            return None
        try:
            with self._lock:
                evidence_id = self._archive.record_alert(
                    alert, clip=clip, clip_start=clip_start, sample_rate=SAMPLE_RATE, transcript=transcript
                )
        except (ArchiveError, OSError) as exc:
            self._metrics.archive_errors.inc()
            log.error("alert %s of room %s not archived: %s", alert.alert_id, alert.room_id, exc)
            return None
        self._metrics.archive_writes.inc()
        return evidence_id

    def record_session(
        self,
        *,
        session_id: str,
        room_id: str,
        anchor_id: str | None,
        transcript: list[dict[str, Any]],
        started_at: datetime,
        ended_at: datetime,
        fence: tuple[str, int] | None = None,
    ) -> str | None:
        """Archive a finished room session's final transcript; its record id, or None on failure.
        (``fence``, the session's ownership epoch, matters only to a cluster's archiver.)"""
        if self._archive is None:
            self._metrics.archive_errors.inc()
            log.error("session %s not archived: archive unavailable (%s)", session_id, self._why_missing)
            return None
        try:
            with self._lock:
                record_id = self._archive.record_session(
                    session_id=session_id,
                    room_id=room_id,
                    anchor_id=anchor_id,
                    transcript=transcript,
                    started_at=started_at,
                    ended_at=ended_at,
                )
        except (ArchiveError, OSError) as exc:
            self._metrics.archive_errors.inc()
            log.error("session %s of room %s not archived: %s", session_id, room_id, exc)
            return None
        self._metrics.archive_writes.inc()
        return record_id

    # -- the moderator console (called from threads via asyncio.to_thread) --------------
    def require(self) -> EvidenceArchive:
        """The open archive; ArchiveError naming why it is unavailable."""
        if self._archive is None:
            raise ArchiveError(f"the evidence archive is unavailable: {self._why_missing}")
        return self._archive

    def summary(self, evidence_id: str) -> EvidenceSummary:
        """The index entry of one record; ArchiveError when unknown or the archive is unavailable."""
        return self.require().get(evidence_id)

    def record_decision(self, evidence_id: str, *, decision: str, by: str, reason: str | None) -> dict[str, Any]:
        """Append a moderator's decision to the archive (serialised with the other writes).

        Returns the decision leaf with its ``decision_id``; raises ArchiveError when refused
        or not stored (the caller tells the moderator; nothing is sent to others then).
        """
        archive = self.require()
        with self._lock:
            leaf = archive.record_decision(evidence_id, decision=decision, by=by, reason=reason)
        self._metrics.archive_writes.inc()
        return leaf

    def evidence_view(self, evidence_id: str) -> dict[str, Any]:
        """What the console shows for one record: index entry, stored alert and transcript,
        clip metadata, proof status against the signed checkpoint, and decisions."""
        archive = self.require()
        summary = archive.get(evidence_id)
        view: dict[str, Any] = {**asdict(summary)}
        if summary.purged_at is None:
            view["alert"] = json.loads(archive.read_part(evidence_id, "alert")) if summary.kind == "alert" else None
            view["transcript"] = archive.read_part(evidence_id, "transcript").decode("utf-8")
        proof = archive.proof_status(evidence_id)
        clip = proof["record"]["parts"].get("clip")
        view["clip"] = (
            {k: clip[k] for k in ("start", "duration", "sample_rate", "size", "type")}
            if clip is not None and summary.purged_at is None
            else None
        )
        checkpoint = proof["checkpoint"]
        view["proof"] = {
            "leaf_index": proof["leaf_index"],
            "tree_size": proof["tree_size"],
            "record_sha256": proof["record_sha256"],
            "leaf_hash": proof["leaf_hash"],
            "inclusion_proof_nodes": len(proof["inclusion_proof"]),
            "covered_by_signed_checkpoint": proof["leaf_index"] < proof["tree_size"],
            "checkpoint_time": checkpoint.get("time"),
            "checkpoint_root": checkpoint.get("root"),
            "public_key_id": proof["public_key_id"],
        }
        view["decisions"] = archive.decisions(evidence_id)
        return view

    # -- reads that never wait for the writer (a separate read-only index connection) ----------
    def labeled_decisions(self) -> list[dict[str, Any]]:
        """Confirmed and dismissed alerts as labeled examples, read from a read-only snapshot of
        the index (SQLite WAL readers never wait for the writer), so an export never holds up
        the rooms' evidence writes."""
        from monitor.archive.decisions import labeled_decisions, open_read_only_index

        archive = self.require()
        index = open_read_only_index(archive.layout.root)
        try:
            return list(labeled_decisions(index, archive.layout.blob_dir))
        finally:
            index.close()

    def anchor_record(self, *, bucket: str, since: str | None) -> list[dict[str, Any]]:
        """Alerts and decisions per anchor and bucket, from a read-only snapshot (as above)."""
        from monitor.archive.decisions import open_read_only_index

        index = open_read_only_index(self.require().layout.root)
        try:
            return index.anchor_record(bucket=bucket, since=since)
        finally:
            index.close()

    def alerts_after(self, since: str, *, limit: int) -> list[dict[str, Any]]:
        """Archived alerts (wire form, ``evidence_id`` set) whose ``alert_id`` sorts after ``since``,
        oldest first, at most ``limit``: what a ``since=`` replay sends after a restart.

        Alert ids begin with their creation time (12 hex digits of Unix ms), so the archive is
        searched from that time on; ``since`` that is not an alert id replays from the start.
        """
        archive = self._archive
        if archive is None:
            return []
        from monitor.archive.records import iso_utc

        try:
            from_ms = int(since[:12], 16)
        except ValueError:
            from_ms = 0
        # an alert's emitted_at (the index's event time) is set just after its id, from the same
        # clock: every alert after `since` has event time >= since's millisecond
        # (in the index's own time format: it compares as text)
        since_iso = iso_utc(datetime.fromtimestamp(from_ms / 1000, UTC))
        found: list[dict[str, Any]] = []
        # the slack covers `since` itself, alerts of its millisecond and purged records
        for summary in archive.find(kind="alert", since=since_iso, limit=limit + REPLAY_SLACK_ALERTS):
            if summary.purged_at is not None:
                continue
            try:
                alert = json.loads(archive.read_part(summary.evidence_id, "alert"))
            except (ArchiveError, OSError, ValueError) as exc:
                log.error("replay: stored alert of evidence %s unreadable: %s", summary.evidence_id, exc)
                continue
            if str(alert.get("alert_id", "")) > since:
                alert["evidence_id"] = summary.evidence_id
                found.append(alert)
        found.sort(key=lambda a: a["alert_id"])
        return found[:limit]

    def read_clip(self, evidence_id: str) -> bytes:
        """The stored FLAC clip of one alert record (hash checked); ArchiveError if none."""
        return self.require().read_part(evidence_id, "clip")

    def close(self) -> None:
        """Close the archive (after the last write)."""
        if self._archive is not None:
            with self._lock:
                self._archive.close()
