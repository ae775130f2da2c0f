"""Faults at the SQLite layer: the log is the only truth, the index only follows it.

A failing index update (any SQLite error), a full disk while the index grows
(SQLite's own SQLITE_FULL, via ``max_page_count``) and a corrupted ``index.sqlite3``
with and without the unclean-stop marker: no acknowledged record is lost, no blob a
record references is deleted, and holds keep their records from a purge.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from monitor.archive import EvidenceArchive, verify_archive
from monitor.archive.index import EvidenceIndex
from monitor.errors import ArchiveWriteError

from .conftest import Clock, make_alert, make_clip


class FailingIndex:
    """Makes ``EvidenceIndex.apply_many`` raise like SQLite does, while ``failures`` > 0."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.failures = 0
        self.disk_full = False
        real: Callable[..., Any] = EvidenceIndex.apply_many

        def apply_many(index: EvidenceIndex, first: int, leaves: list[Any]) -> None:
            if self.failures > 0:
                self.failures -= 1
                raise ArchiveWriteError(f"cannot update the archive index {index.path}: disk I/O error")
            if self.disk_full:
                # The file system has no room beyond the pages the database has now.
                pages = index._db.execute("PRAGMA page_count").fetchone()[0]
                index._db.execute(f"PRAGMA max_page_count = {pages}")
            return real(index, first, leaves)

        monkeypatch.setattr(EvidenceIndex, "apply_many", apply_many)


def record(archive: EvidenceArchive, number: int) -> str:
    return archive.record_alert(make_alert(number), clip=make_clip(0.3, seed=number), clip_start=0.0,
                                transcript=f"words {number}")


def blob_files(data_dir: Path) -> set[str]:
    return {p.name for p in (data_dir / "blobs").rglob("*") if p.is_file()}


def unclean_stop(archive: EvidenceArchive) -> None:
    """What a killed process leaves: files as they are, DIRTY present, locks released."""
    archive._log.abandon()
    assert (archive.layout.dirty_marker).exists()


def test_failed_index_writes_are_replayed_not_skipped_and_a_failed_hold_still_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults = FailingIndex(monkeypatch)
    clock = Clock(datetime(2020, 1, 1, tzinfo=UTC))
    archive = EvidenceArchive.open(tmp_path, clock=clock)
    ids = [record(archive, n) for n in range(3)]
    faults.failures = 2  # the update after the hold, and the rebuild it triggers
    archive.hold(ids[0], reason="case 7")  # durable in the log although the index missed it
    faults.failures = 1
    late = record(archive, 3)  # acknowledged; its own index update fails once, the rebuild succeeds
    assert archive.get(ids[0]).held
    assert archive.get(late).evidence_id == late
    faults.failures = 2
    last = record(archive, 4)  # index fails again: acknowledged, index behind
    blobs_before = blob_files(tmp_path)
    unclean_stop(archive)

    clock.now = datetime.now(UTC)
    with EvidenceArchive.open(tmp_path, clock=clock) as reopened:
        assert blob_files(tmp_path) == blobs_before  # crash clean-up deleted nothing a record references
        for eid in [*ids, late, last]:
            assert reopened.read_part(eid, "clip")
        assert reopened.get(ids[0]).held
        purged = reopened.purge()
        assert ids[0] not in purged.evidence_ids
        assert sorted(purged.evidence_ids) == sorted([*ids[1:], late, last])
        assert reopened.read_part(ids[0], "transcript") == b"words 0"
    report = verify_archive(tmp_path)
    assert report.ok, [str(p) for p in report.problems]
    assert (report.held, report.purged) == (1, 4)


def test_hold_and_purge_are_refused_while_the_index_cannot_follow_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults = FailingIndex(monkeypatch)
    clock = Clock(datetime(2020, 1, 1, tzinfo=UTC))
    with EvidenceArchive.open(tmp_path, clock=clock) as archive:
        held = record(archive, 0)
        faults.failures = 2
        archive.hold(held)
        faults.failures = 10
        clock.now = datetime.now(UTC)
        with pytest.raises(Exception, match="nothing is decided from a stale index"):
            archive.purge()
        faults.failures = 0
        assert archive.purge().evidence_ids == []  # the hold was replayed from the log first
        assert archive.get(held).held


def test_full_disk_while_the_index_grows_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    faults = FailingIndex(monkeypatch)
    archive = EvidenceArchive.open(tmp_path)
    ids = [record(archive, 0)]
    faults.disk_full = True
    while archive.index.applied() == archive.size and len(ids) < 300:
        ids.append(record(archive, len(ids)))  # acknowledged although the index cannot grow
    assert archive.index.applied() < archive.size
    assert "database or disk is full" in caplog.text  # SQLite's own SQLITE_FULL
    ids += [record(archive, len(ids) + n) for n in range(5)]
    faults.disk_full = False
    ids.append(record(archive, len(ids)))  # room again: the index catches up from the log
    assert archive.index.applied() == archive.size
    assert [r.evidence_id for r in archive.find(limit=1000)] == ids
    archive.close()
    assert verify_archive(tmp_path).ok


@pytest.mark.parametrize("dirty", [False, True], ids=["clean-stop", "unclean-stop"])
def test_corrupted_index_is_rebuilt_from_the_log(tmp_path: Path, dirty: bool) -> None:
    with EvidenceArchive.open(tmp_path) as archive:
        ids = [record(archive, n) for n in range(20)]
        archive.hold(ids[3])
    index = tmp_path / "index.sqlite3"
    data = bytearray(index.read_bytes())
    for offset in range(4096, len(data), 4096):  # every page after the header page
        data[offset:offset + 64] = os.urandom(64)
    data[:16] = b"not a database!!" if dirty else data[:16]
    index.write_bytes(bytes(data))
    if dirty:
        (tmp_path / "DIRTY").write_bytes(b"open\n")
    blobs_before = blob_files(tmp_path)
    with EvidenceArchive.open(tmp_path) as archive:
        assert blob_files(tmp_path) == blobs_before
        assert [r.evidence_id for r in archive.find(kind="alert")] == ids
        assert archive.get(ids[3]).held
        assert archive.proof_status(ids[7])["leaf_index"] == 7
    assert verify_archive(tmp_path).ok


def test_index_ahead_of_the_log_is_rebuilt(tmp_path: Path) -> None:
    with EvidenceArchive.open(tmp_path) as archive:
        ids = [record(archive, n) for n in range(3)]
    db = sqlite3.connect(tmp_path / "index.sqlite3")
    db.execute("UPDATE meta SET value = '99' WHERE key = 'applied'")
    db.commit()
    db.close()
    with EvidenceArchive.open(tmp_path) as archive:
        assert archive.index.applied() == 3
        assert [r.evidence_id for r in archive.find()] == ids
