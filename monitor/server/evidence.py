"""The server's door to the evidence archive: serialised writes, failures counted, never raised.

An alert must reach the anchor even when the disk is full, so :class:`EvidenceWriter`
turns an archive failure into ``evidence_id = None`` plus a logged error and a count in
``monitor_archive_errors_total``. With no archive at all (it failed to open at start-up)
every write counts as an error the same way.
"""

from __future__ import annotations

import logging
import threading
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

    def close(self) -> None:
        """Close the archive (after the last write)."""
        if self._archive is not None:
            with self._lock:
                self._archive.close()
