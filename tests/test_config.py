"""Settings: unknown keys refused everywhere, one-line errors, defaults that follow the machine,
and ``monitor serve --help`` listing every setting (PROTOCOL.md v2, "Configuration")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.config import Settings, default_asr_threads, default_asr_workers, load_settings
from monitor.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def clean_env(**variables: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    return {**env, **variables}


def serve(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor.cli", "serve", "--port", "0", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_token_entry_with_a_typo_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """``room`` for ``rooms`` used to load as an ingest token for every room."""
    monkeypatch.setenv("MONITOR_TOKENS", json.dumps({"t1": {"role": "ingest", "room": ["r7"]}}))
    with pytest.raises(ConfigError, match=r"MONITOR_TOKENS at t1\.room: unknown key"):
        load_settings()


def test_unknown_monitor_variable_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITOR_SERVER_WORKER", "3")  # a typo of MONITOR_SERVER_WORKERS
    with pytest.raises(ConfigError, match="unknown setting MONITOR_SERVER_WORKER:"):
        load_settings()


def test_unknown_key_in_config_file_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "monitor.yaml"
    config.write_text("port: 9000\nresume_grace: 5\n")
    monkeypatch.setenv("MONITOR_CONFIG", str(config))
    with pytest.raises(ConfigError, match="unknown setting 'resume_grace'"):
        load_settings()


def test_config_file_values_apply(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "monitor.json"
    config.write_text(json.dumps({"port": 9000, "max_sessions_per_token": 7}))
    monkeypatch.setenv("MONITOR_CONFIG", str(config))
    settings = load_settings()
    assert (settings.port, settings.max_sessions_per_token) == (9000, 7)


def test_defaults_follow_the_cores_the_process_may_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    assert (default_asr_workers(), default_asr_threads()) == (2, 1)
    settings = Settings()
    assert (settings.asr_workers, settings.asr_threads, settings.server_workers) == (2, 1, 2)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(32)))
    assert (default_asr_workers(), default_asr_threads()) == (8, 4)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3})
    assert (default_asr_workers(), default_asr_threads()) == (1, 1)


def test_bad_tokens_json_is_one_line_and_exit_2() -> None:
    result = serve(clean_env(MONITOR_TOKENS="not json"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "monitor: invalid setting MONITOR_TOKENS: not valid JSON (Expecting value: line 1 column 1 (char 0))"
    ]


def test_out_of_range_value_names_the_setting() -> None:
    result = serve(clean_env(MONITOR_ARCHIVE_RETENTION_YEARS="1"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "MONITOR_ARCHIVE_RETENTION_YEARS" in lines[0] and "3" in lines[0]


def test_serve_help_lists_every_setting_with_default() -> None:
    result = serve(clean_env(), "--help")
    assert result.returncode == 0
    for name in Settings.model_fields:
        assert f"MONITOR_{name.upper()}" in result.stdout, name
    assert "MONITOR_MAX_SESSIONS_PER_TOKEN" in result.stdout and "default 500" in result.stdout


def test_verbose_flag_before_or_after_the_sub_command() -> None:
    from monitor.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["-v", "serve"]).verbose is True
    assert parser.parse_args(["serve", "-v"]).verbose is True
    assert parser.parse_args(["archive", "verify", "-v"]).verbose is True
    assert parser.parse_args(["scan", "--text"]).verbose is False
