"""Times never go back (an injected clock steps back and forward), and the signing key is never replaced."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from monitor.archive import EvidenceArchive, verify_archive
from monitor.archive.leaves import TIME_FIELDS
from monitor.archive.signing import Checkpoint
from monitor.errors import ArchiveError, ArchiveKeyError

from .conftest import make_alert


class SteppingClock:
    """A clock the test moves by hand (no automatic advance)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def checkpoints(data_dir: Path) -> list[Checkpoint]:
    lines = (data_dir / "log" / "checkpoints.log").read_bytes().splitlines()
    return [Checkpoint.from_line(line, "test") for line in lines]


def leaf_times(data_dir: Path) -> list[str]:
    leaves = [json.loads(line) for line in (data_dir / "log" / "records.log").read_bytes().splitlines()]
    return [leaf[TIME_FIELDS[leaf["kind"]]] for leaf in leaves]


def test_clock_stepping_back_never_makes_verify_fail(tmp_path: Path) -> None:
    clock = SteppingClock(datetime(2024, 5, 1, 12, 0, 0, 500000, tzinfo=UTC))
    with EvidenceArchive.open(tmp_path, clock=clock) as archive:
        first = archive.record_alert(make_alert(1), clip=None, clip_start=None, transcript="a")
        clock.now -= timedelta(seconds=2)  # an NTP step back
        archive.record_alert(make_alert(2), clip=None, clip_start=None, transcript="b")
        archive.hold(first)
        clock.now -= timedelta(hours=1)  # a badly set clock
        archive.record_decision(first, decision="confirm", by="mod")
        clock.now += timedelta(hours=3)  # and forward again
        archive.record_alert(make_alert(3), clip=None, clip_start=None, transcript="c")
    signed = checkpoints(tmp_path)
    times = [c.time for c in signed]
    assert times == sorted(times)
    assert signed[1].observed_skew_s == pytest.approx(2.5)  # behind the first checkpoint (12:00:01)
    assert signed[3].observed_skew_s == pytest.approx(3602.5)
    assert signed[4].observed_skew_s == 0.0
    written = leaf_times(tmp_path)
    assert written == sorted(written)
    assert written[1] == written[0]  # held at the last recorded time, not moved back
    report = verify_archive(tmp_path)
    assert report.ok, [str(p) for p in report.problems]
    with EvidenceArchive.open(tmp_path, clock=SteppingClock(datetime(2024, 5, 1, tzinfo=UTC))) as archive:
        archive.record_alert(make_alert(4), clip=None, clip_start=None, transcript="after a restart")
    assert verify_archive(tmp_path).ok  # the floor survives a restart (read back from the log)


def test_purge_cannot_be_dated_after_the_clock(tmp_path: Path) -> None:
    clock = SteppingClock(datetime(2024, 5, 1, tzinfo=UTC))
    with EvidenceArchive.open(tmp_path, clock=clock) as archive:
        archive.record_alert(make_alert(1), clip=None, clip_start=None, transcript="a")
        with pytest.raises(ArchiveError, match="later than the system clock"):
            archive.purge(now=clock.now + timedelta(seconds=1))


def test_missing_private_key_never_replaces_the_public_key(tmp_path: Path) -> None:
    with EvidenceArchive.open(tmp_path) as archive:
        archive.record_alert(make_alert(1), clip=None, clip_start=None, transcript="a")
    public = (tmp_path / "keys" / "public_key.pem").read_bytes()
    private = tmp_path / "keys" / "signing_key.pem"
    private.unlink()
    with pytest.raises(ArchiveKeyError, match=f"signing key {private} is missing"):
        EvidenceArchive.open(tmp_path)
    assert (tmp_path / "keys" / "public_key.pem").read_bytes() == public
    assert not private.exists()
    (tmp_path / "keys" / "public_key.pem").unlink()  # even with the public key gone too
    with pytest.raises(ArchiveKeyError, match="signed checkpoints"):
        EvidenceArchive.open(tmp_path)
    assert not private.exists()


def write_key(path: Path, mode: int = 0o600) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    os.chmod(path, mode)
    return key


def test_signing_key_outside_the_data_dir(tmp_path: Path) -> None:
    key_file = tmp_path / "secrets" / "archive.pem"
    key_file.parent.mkdir()
    write_key(key_file)
    data_dir = tmp_path / "data"
    with EvidenceArchive.open(data_dir, signing_key=key_file) as archive:
        archive.record_alert(make_alert(1), clip=None, clip_start=None, transcript="a")
    assert not (data_dir / "keys" / "signing_key.pem").exists()
    assert verify_archive(data_dir).ok
    with pytest.raises(ArchiveKeyError, match=r"signing key .* is missing"):
        EvidenceArchive.open(data_dir)  # without the setting the key is not there: refused, not re-made
    with pytest.raises(ArchiveKeyError, match="MONITOR_SIGNING_KEY"):
        EvidenceArchive.open(data_dir, signing_key=tmp_path / "secrets" / "typo.pem")
    other = tmp_path / "secrets" / "other.pem"
    write_key(other)
    with pytest.raises(ArchiveKeyError, match="is not the key of"):
        EvidenceArchive.open(data_dir, signing_key=other)
    os.chmod(key_file, 0o644)
    with pytest.raises(ArchiveKeyError, match=r"readable by group or others \(mode 0644\)"):
        EvidenceArchive.open(data_dir, signing_key=key_file)
