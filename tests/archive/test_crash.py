"""A writer killed with SIGKILL at random moments loses nothing it acknowledged.

The writer is a forked child (forking after the imports keeps each run to
milliseconds, so hundreds of kills fit in a few seconds). It prints an evidence id
on a pipe only after ``record_alert`` returned. After every kill the parent
reopens the archive (crash recovery), checks every acknowledged id is there with
its content, and runs a full ``verify``.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

from monitor.archive import EvidenceArchive, verify_archive
from monitor.archive.records import encode_flac

from .conftest import make_alert, make_clip

KILLS = 200
TIME_BUDGET_S = 50.0


def _writer(data_dir: Path, pipe_fd: int, seed: int) -> None:
    """Child process body: append records forever, acknowledging each on the pipe."""
    try:
        archive = EvidenceArchive.open(data_dir)
        number = 0
        while True:
            alert = make_alert(number, room=f"r{seed % 3}")
            clip = make_clip(0.25, seed=seed + number) if number % 4 else None
            eid = archive.record_alert(alert, clip=clip, clip_start=1.0, transcript=f"{seed}/{number}")
            os.write(pipe_fd, f"{eid}\n".encode())
            if number % 5 == 2:
                archive.hold(eid, reason="kill test")
                os.write(pipe_fd, f"held {eid}\n".encode())
            if number % 7 == 6:
                archive.record_session(session_id=f"s{seed}-{number}", room_id=f"r{seed % 3}", anchor_id="a",
                                       transcript=[{"text": str(number)}],
                                       started_at=alert_time(), ended_at=alert_time())
            number += 1
    finally:
        os._exit(0)


def alert_time():
    from datetime import UTC, datetime

    return datetime.now(UTC)


def test_sigkill_at_random_moments_never_loses_an_acknowledged_record(tmp_path: Path) -> None:
    data_dir = tmp_path / "archive"
    encode_flac(make_clip(0.1), 16000)  # warm the codec up before forking: runs stay short
    rng = random.Random(20240301)
    acknowledged: list[str] = []
    held: list[str] = []
    started = time.monotonic()
    kills = 0
    while kills < KILLS and time.monotonic() - started < TIME_BUDGET_S:
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            _writer(data_dir, write_fd, seed=kills)
        os.close(write_fd)
        # Some kills land during open/recovery, most during appends.
        time.sleep(rng.choice([0.0, 0.003, *[rng.uniform(0.01, 0.12)] * 4]))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        kills += 1
        with os.fdopen(read_fd, "rb") as pipe:
            output = pipe.read().decode()
        lines = output.split("\n")[:-1]
        acknowledged += [line for line in lines if not line.startswith("held ")]
        held += [line.split()[1] for line in lines if line.startswith("held ")]

        with EvidenceArchive.open(data_dir) as archive:
            for eid in acknowledged:
                record = archive.get(eid)  # raises if an acknowledged record was lost
                for role in archive.index.parts(eid):  # every stored part is there and hashes right
                    assert archive.read_part(eid, role) is not None, (record, role)
            for eid in held:
                assert archive.get(eid).held, f"the acknowledged hold on {eid} was lost"
        report = verify_archive(data_dir)
        assert report.ok, f"after kill {kills}: {[str(p) for p in report.problems]}"
        assert report.alerts >= len(acknowledged)
        assert not list((data_dir / "tmp").iterdir())

    print(f"{kills} kills in {time.monotonic() - started:.1f} s, {len(acknowledged)} acknowledged records "
          f"and {len(held)} holds kept")
    assert kills >= 100, f"only {kills} kills fit in {TIME_BUDGET_S} s"
    assert len(acknowledged) > 50  # the writer made real progress between kills
