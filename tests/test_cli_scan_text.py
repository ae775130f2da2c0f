"""``monitor scan --text`` as a user runs it: a real subprocess, stdin in, JSON lines out."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import FIXTURE_LEXICONS


def _scan(stdin: bytes, *args: str, lexicons=FIXTURE_LEXICONS) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "MONITOR_LEXICON_DIR": str(lexicons)}
    return subprocess.run(
        [sys.executable, "-m", "monitor.cli", "scan", "--text", *args],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_jsonl_alerts_carry_line_numbers_and_every_contract_field() -> None:
    result = _scan("第一时间发货\n这是千足金的手镯\n加我微信私聊\n".encode(), "--jsonl")
    assert result.returncode == 0, result.stderr
    alerts = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [(a["line"], a["rule_id"]) for a in alerts] == [(1, "PM-002"), (2, "PT-001"), (2, "PT-002")]
    assert alerts[0]["matched"] == "千足金" and alerts[0]["evidence_id"] is None
    assert "file" not in alerts[0]


def test_invalid_utf8_is_named_and_other_lines_still_scanned() -> None:
    result = _scan(b"\xff\xfe bad\n\xe5\x8a\xa0\xe6\x88\x91\xe5\xbe\xae\xe4\xbf\xa1\n", "--jsonl")
    assert result.returncode != 0
    assert result.stderr.decode().strip() == "monitor scan: line 0: invalid UTF-8 at byte 0"
    assert [json.loads(line)["line"] for line in result.stdout.decode().splitlines()] == [1]


def test_no_alerts_exit_zero_readable_output() -> None:
    result = _scan("今天天气不错\n".encode())
    assert (result.returncode, result.stdout) == (0, b"")
    readable = _scan("加我微信\n".encode())
    assert "private_transaction/violation" in readable.stdout.decode()


@pytest.mark.parametrize("bad", ["superstition.yaml"])
def test_malformed_lexicon_fails_at_start(tmp_path, bad) -> None:
    import shutil

    target = tmp_path / "lex"
    shutil.copytree(FIXTURE_LEXICONS, target)
    (target / bad).write_text("category: superstition\ntitle: t\nregulation: rr\nentries: [{term: 开光}]\n")
    result = _scan(b"x\n", lexicons=target)
    assert result.returncode == 2
    assert "superstition.yaml: entry 0 (开光): severity: Field required" in result.stderr.decode()


def test_transcript_prints_each_input_line_before_its_alerts() -> None:
    """``scan --text --transcript``: one utterance record per line (line, text), then its alerts."""
    result = _scan("第一时间发货\n这是千足金的手镯\n".encode(), "--jsonl", "--transcript")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert records[0] == {"type": "utterance", "line": 0, "text": "第一时间发货"}
    assert records[1] == {"type": "utterance", "line": 1, "text": "这是千足金的手镯"}
    assert [(r["line"], r["rule_id"]) for r in records[2:]] == [(1, "PM-002")]
    readable = _scan("加我微信\n".encode(), "--transcript").stdout.decode().splitlines()
    assert readable[0] == "line 0  heard: 加我微信"
    assert "private_transaction/violation" in readable[1]
