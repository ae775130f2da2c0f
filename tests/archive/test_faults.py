"""I/O faults (disk full, failing fsync) at every step of a commit.

``os.write`` and ``os.fsync`` are made to raise ENOSPC at the k-th call of a
commit, for every k: once (a transient fault) and from then on (a full disk).
Each time the call must raise ArchiveWriteError naming the path and the OS
error, acknowledge nothing, and the archive must work again (and verify) once
the fault is gone.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from monitor.archive import EvidenceArchive, verify_archive
from monitor.archive.store import LocalBlobStore
from monitor.errors import ArchiveWriteError

from .conftest import make_alert, make_clip


class FaultInjector:
    """Wraps os.write/os.fsync; fails call number ``fail_at`` (and later ones if ``persistent``)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self.fail_at: int | None = None
        self.persistent = False
        self._real_write = os.write
        self._real_fsync = os.fsync
        monkeypatch.setattr(os, "write", self._wrap(self._real_write))
        monkeypatch.setattr(os, "fsync", self._wrap(self._real_fsync))

    def _wrap(self, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            number = self.calls
            self.calls += 1
            if self.fail_at is not None and (number == self.fail_at or (self.persistent and number > self.fail_at)):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real(*args)

        return call

    def arm(self, fail_at: int | None, *, persistent: bool = False) -> None:
        self.calls, self.fail_at, self.persistent = 0, fail_at, persistent


def alert_ids_in_log(data_dir: Path) -> list[str]:
    lines = (data_dir / "log" / "records.log").read_bytes().splitlines()
    return [json.loads(line).get("alert_id") for line in lines]


@pytest.mark.parametrize("persistent", [False, True], ids=["transient", "disk-full"])
def test_fault_at_every_step_of_a_commit_acknowledges_nothing_and_heals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, persistent: bool
) -> None:
    faults = FaultInjector(monkeypatch)
    archive = EvidenceArchive.open(tmp_path)
    good = [archive.record_alert(make_alert(0), clip=make_clip(0.3), clip_start=0.0, transcript="ok 0")]
    faults.arm(None)
    good.append(archive.record_alert(make_alert(1), clip=make_clip(0.3, seed=1), clip_start=0.0,
                                     transcript="ok 1"))
    steps = faults.calls
    print(f"{steps} write/fsync calls per commit")
    assert steps >= 8  # 3 blobs x (write, fsync, dir fsync) + log + checkpoint

    for step in range(steps):
        alert = make_alert(100 + step)
        log_before = (tmp_path / "log" / "records.log").read_bytes()
        faults.arm(step, persistent=persistent)
        with pytest.raises(ArchiveWriteError) as failure:
            archive.record_alert(alert, clip=make_clip(0.3, seed=100 + step), clip_start=0.0,
                                 transcript=f"failed {step}")
        faults.arm(None)
        message = str(failure.value)
        assert "No space left on device" in message, message
        assert str(tmp_path) in message, message
        assert (tmp_path / "log" / "records.log").read_bytes().startswith(log_before)
        assert alert.alert_id not in alert_ids_in_log(tmp_path)[: len(log_before.splitlines())]

        # Fault gone: the archive takes records again and the failed one left no trace.
        good.append(archive.record_alert(make_alert(200 + step), clip=make_clip(0.3, seed=200 + step),
                                         clip_start=0.0, transcript=f"ok after {step}"))
        assert alert.alert_id not in alert_ids_in_log(tmp_path)
        report = verify_archive(tmp_path)
        assert report.ok, f"step {step}: {[str(p) for p in report.problems]}"

    archive.close()
    with EvidenceArchive.open(tmp_path) as reopened:
        for eid in good:
            assert reopened.read_part(eid, "clip")
    assert verify_archive(tmp_path).ok
    assert not list((tmp_path / "tmp").iterdir())


def test_error_names_the_blob_path_and_the_os_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalBlobStore(tmp_path / "blobs", tmp_path / "tmp")

    def full(*_: Any) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(ArchiveWriteError, match=r"write to .*/tmp/[0-9a-f]{64}\..*\.tmp failed: "
                                                r"\[Errno 28\] No space left on device"):
        store.put(b"evidence")
    monkeypatch.undo()
    assert not list((tmp_path / "tmp").iterdir())
    assert store.get(store.put(b"evidence")) == b"evidence"
