"""Which records a purge may delete, decided from an index that holds every log leaf.

Retention works like S3 Object Lock in compliance mode: nobody shortens it. A record
is purged only past its ``retain_until`` (at least three years after it was recorded,
extended by its session), never while under legal hold, and never with a cut-off
later than the clock. The caller (:meth:`EvidenceArchive.purge`) first replays the
index from the log, so a hold whose index update failed still holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from monitor.archive.index import EvidenceIndex
from monitor.archive.records import FORMAT_VERSION
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


def purge_leaf(index: EvidenceIndex, targets: list[str], cutoff: str, recorded_at: str) -> dict[str, Any]:
    """The log leaf of a purge; it lists the blobs no record outside ``targets`` still uses."""
    target_set = set(targets)
    doomed: set[str] = set()
    for eid in targets:
        for info in index.parts(eid).values():
            users = index.blob_users(info["sha256"])
            if all(user in target_set or purged for user, purged in users):
                doomed.add(info["sha256"])
    return {
        "v": FORMAT_VERSION,
        "kind": "purge",
        "at": cutoff,
        "recorded_at": recorded_at,
        "evidence_ids": sorted(target_set),
        "blobs": sorted(doomed),
    }
