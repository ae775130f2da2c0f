"""Retention and legal hold: how long records are kept, and what a purge may delete.

Retention works like S3 Object Lock in compliance mode: nobody shortens it. A record
is kept until ``retain_until`` = ``retain_from`` (end of stream; default: time of
recording) + the retention years, never less than three years after it was recorded,
and a session extends its alerts' retention to its own. A record is purged only past
its ``retain_until``, never while under legal hold, and never with a cut-off later
than the clock. Holds and purges are decided from an index that holds every log leaf
(it is replayed from the log first, so a hold whose index update failed still holds),
under the log's lock, and written as log records (:class:`~monitor.archive.leaves.LegalHold`,
:class:`~monitor.archive.leaves.Purge`) before any blob is deleted.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime

from monitor.archive.evidence_log import EvidenceLog
from monitor.archive.index import EvidenceIndex
from monitor.archive.leaves import LegalHold, Purge
from monitor.archive.records import add_years, check_retention_years, iso_utc, min_retain_until
from monitor.errors import ArchiveError


@dataclass
class PurgeResult:
    """What one purge removed: evidence ids, blob names and the bytes freed."""

    evidence_ids: list[str] = field(default_factory=list)
    blobs: list[str] = field(default_factory=list)
    bytes_freed: int = 0


def purge_targets(index: EvidenceIndex, cutoff: str, evidence_ids: list[str] | None) -> list[str]:
    """Records to purge at ``cutoff`` (UTC ISO): every expired unheld one, or exactly ``evidence_ids``.

    Raises ArchiveError naming the first named record that is unknown, already purged,
    held, or still within retention.
    """
    if evidence_ids is None:
        return index.expired(cutoff)
    for eid in evidence_ids:
        record = index.get(eid)
        if record is None:
            raise ArchiveError(f"no evidence with id {eid!r} in the archive")
        if record.purged_at is not None:
            raise ArchiveError(f"evidence {eid} was already purged at {record.purged_at}")
        if record.held:
            raise ArchiveError(f"evidence {eid} is under legal hold; release it first")
        if record.retain_until > cutoff:
            raise ArchiveError(f"evidence {eid} must be retained until {record.retain_until}; purge refused")
    return list(evidence_ids)


def doomed_blobs(index: EvidenceIndex, targets: list[str]) -> list[str]:
    """Blobs of ``targets`` that no record outside them still uses (shared transcripts stay)."""
    target_set = set(targets)
    doomed: set[str] = set()
    for eid in targets:
        for info in index.parts(eid).values():
            users = index.blob_users(info["sha256"])
            if all(user in target_set or purged for user, purged in users):
                doomed.add(info["sha256"])
    return sorted(doomed)


class RetentionPolicy:
    """Retention dates, legal holds and purges of one open log (``years``: at least 3)."""

    def __init__(self, evidence_log: EvidenceLog, years: int) -> None:
        self.years = check_retention_years(years)
        self._log = evidence_log

    def retain_until(self, recorded_at: datetime, retain_from: datetime | None = None) -> datetime:
        """Keep a record made at ``recorded_at`` until ``retain_from`` (default: then) + the years,
        and never less than the legal minimum after ``recorded_at``."""
        return max(add_years(retain_from or recorded_at, self.years), min_retain_until(recorded_at))

    def hold(self, evidence_id: str, *, reason: str | None = None, release: bool = False) -> None:
        """Place (or with ``release`` lift) a legal hold; a held record is never purged.

        Raises ArchiveError for an unknown or purged record, a hold on a held record or a
        release of one not held, and when the index cannot follow the log.
        """
        evidence_log = self._log
        with evidence_log.lock:
            evidence_log.sync_index(strict=True)
            record = evidence_log.index.get(evidence_id)
            if record is None:
                raise ArchiveError(f"no evidence with id {evidence_id!r} in {evidence_log.layout.root}")
            if record.purged_at is not None:
                raise ArchiveError(f"evidence {evidence_id} was purged at {record.purged_at}; cannot hold")
            if record.held != release:
                state = "not held" if release else "already held"
                raise ArchiveError(f"evidence {evidence_id} is {state}")
            evidence_log.append(LegalHold(evidence_id, evidence_log.now(), reason, release))

    def purge(self, *, now: datetime | None = None, evidence_ids: list[str] | None = None) -> PurgeResult:
        """Delete the stored content of records past ``retain_until`` and not on hold.

        ``now`` (default: the clock) may lie before the clock but not after it (nor after
        the last recorded time). With ``evidence_ids``, purges exactly those and refuses
        (ArchiveError) if any is within retention, held or unknown. The purge leaf is
        written first, then the blobs deleted; leaves and Merkle hashes stay.
        """
        evidence_log = self._log
        with evidence_log.lock:
            evidence_log.sync_index(strict=True)
            clock_now = evidence_log.now()
            cutoff = now or clock_now
            if cutoff > clock_now:
                raise ArchiveError(
                    f"purge time {iso_utc(cutoff)} is later than the system clock {iso_utc(clock_now)}; "
                    "retention cannot be shortened by moving the clock forward"
                )
            targets = purge_targets(evidence_log.index, iso_utc(cutoff), evidence_ids)
            if not targets:
                return PurgeResult()
            purge = Purge(at=cutoff, recorded_at=clock_now, evidence_ids=tuple(sorted(set(targets))),
                          blobs=tuple(doomed_blobs(evidence_log.index, targets)))
            evidence_log.append(purge)
            result = PurgeResult(evidence_ids=list(purge.evidence_ids), blobs=list(purge.blobs))
            for sha in result.blobs:
                with suppress(OSError):
                    result.bytes_freed += evidence_log.blobs.path_for(sha).stat().st_size
                evidence_log.discard_blobs([sha])
            return result
