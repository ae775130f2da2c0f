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
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from monitor.alerts import Alert
from monitor.asr.audio import SAMPLE_RATE
from monitor.errors import ArchiveError
from monitor.server.metrics import ServerMetrics

if TYPE_CHECKING:
    from monitor.archive import EvidenceArchive

log = logging.getLogger(__name__)


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

    def record_alert(
        self, alert: Alert, *, clip: np.ndarray | None, clip_start: float | None, transcript: str
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
    ) -> str | None:
        """Archive a finished room session's final transcript; its record id, or None on failure."""
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

    def read_clip(self, evidence_id: str) -> bytes:
        """The stored FLAC clip of one alert record (hash checked); ArchiveError if none."""
        return self.require().read_part(evidence_id, "clip")

    def close(self) -> None:
        """Close the archive (after the last write)."""
        if self._archive is not None:
            with self._lock:
                self._archive.close()
