"""Tamper-evident evidence archive (three-year retention, crash-safe).

Public interface::

    from monitor.archive import EvidenceArchive, verify_archive, export_evidence

See docs/ARCHIVE.md for the storage layout, the guarantees and the inspector's check.
"""

from monitor.archive.archive import EvidenceArchive, PurgeResult
from monitor.archive.export import export_evidence
from monitor.archive.index import EvidenceSummary
from monitor.archive.store import BlobStore, LocalBlobStore
from monitor.archive.verify import VerifyReport, verify_archive

__all__ = [
    "BlobStore",
    "EvidenceArchive",
    "EvidenceSummary",
    "LocalBlobStore",
    "PurgeResult",
    "VerifyReport",
    "export_evidence",
    "verify_archive",
]
