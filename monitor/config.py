"""The one settings model of the monitor (pydantic-settings, prefix ``MONITOR_``).

Build it once at start-up with :func:`load_settings` and pass it down; no other
module reads the environment. An optional config file (JSON or YAML) named by
``MONITOR_CONFIG`` supplies defaults that environment variables override.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from monitor.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent
"""The checkout (or install prefix) holding ``lexicons/``, ``models/`` and ``samples/``."""


class TokenGrant(BaseModel):
    """What one bearer token may do: its role and, optionally, the rooms it is limited to."""

    role: Literal["ingest", "anchor", "moderator", "admin"]
    rooms: list[str] | None = None
    name: str | None = Field(
        default=None, max_length=128, description="Who holds the token (recorded with moderators' decisions)."
    )


class Settings(BaseSettings):
    """Every tunable of the monitor; each maps to ``MONITOR_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="MONITOR_", extra="ignore")

    lexicon_dir: Path = REPO_ROOT / "lexicons"
    models_dir: Path = REPO_ROOT / "models"
    data_dir: Path = Path("data")
    archive_retention_years: int = Field(
        default=3, ge=3, description="Years evidence is kept after its stream ends; legal minimum 3."
    )

    # ASR (faster-whisper / CTranslate2)
    asr_model: Path | None = Field(
        default=None, description="Path to a CTranslate2 Whisper model; default: the embedded base model."
    )
    asr_device: str = "cpu"
    asr_compute_type: str = "int8"
    asr_threads: int = 2
    asr_workers: int = Field(default=1, ge=1, description="Concurrent transcriptions (CTranslate2 workers).")
    asr_beam_size: int = Field(default=1, ge=1, le=10, description="Beam width of the Whisper decoder.")
    asr_bias: Literal["none", "base", "prompt_terms", "hotwords"] = Field(
        default="base", description="Decoder prompt: see docs/ASR.md (measured)."
    )
    asr_rescore: bool = Field(
        default=True, description="Lexicon rescoring: the decoder confirms sound-alike risk terms (docs/ASR.md)."
    )

    # Server
    host: str = "127.0.0.1"
    port: int = 8765
    tokens: dict[str, TokenGrant] = Field(default_factory=dict)
    # Streaming server (`monitor serve`; docs/SERVER.md explains each; units are in the names)
    server_workers: int = Field(default=2, ge=1)  # threads transcribing + detecting, shared by all rooms
    max_frame_bytes: int = Field(default=131072, ge=2)  # largest binary audio frame accepted
    max_pending_audio_s: float = Field(default=20.0, gt=0)  # queued speech per room before reads pause
    max_ingest_speed: float = Field(default=8.0, gt=0)  # sustained audio a room may send, x real time
    ingest_burst_s: float = Field(default=30.0, gt=0)  # audio a room may send above that rate at once
    max_messages_per_s: int = Field(default=200, ge=1)  # websocket messages per second per ingest socket
    stream_min_silence_ms: int = Field(default=350, ge=50)  # silence that ends an utterance
    stream_max_utterance_s: float = Field(default=12.0, gt=1)  # longest utterance before a forced cut
    dedup_window_s: float = Field(default=20.0, ge=0)  # same rule again in a room within this: one reminder
    replay_buffer_alerts: int = Field(default=1000, ge=1)  # alerts held for `since=` replays
    subscriber_queue_alerts: int = Field(default=256, ge=1)  # unsent alerts per subscriber before cut-off
    resume_grace_s: float = Field(default=60.0, ge=0)  # how long a dropped room waits for a resume
    start_timeout_s: float = Field(default=10.0, gt=0)  # time a new socket has to send `start`
    ping_interval_s: float = Field(default=20.0, gt=0)  # keepalive ping interval
    ping_timeout_s: float = Field(default=20.0, gt=0)  # missing pong after this closes the socket
    drain_timeout_s: float = Field(default=120.0, gt=0)  # longest SIGTERM drain before exiting anyway
    # Moderator console (`/console`, docs/CONSOLE.md)
    console_session_ttl_s: float = Field(default=12 * 3600.0, gt=0)  # sign-in cookie lifetime
    console_cookie_secure: bool = False  # add `Secure` to the cookie (set it when served over https)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the optional config file, then ``MONITOR_*`` variables, then ``overrides``.

    Raises :class:`ConfigError` naming the offending setting.
    """
    file_values: dict[str, Any] = {}
    config_path = os.environ.get("MONITOR_CONFIG")
    if config_path:
        try:
            text = Path(config_path).read_text(encoding="utf-8")
            loaded = json.loads(text) if config_path.endswith(".json") else yaml.safe_load(text)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            raise ConfigError(f"MONITOR_CONFIG={config_path}: cannot read config file: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"MONITOR_CONFIG={config_path}: config file must hold a mapping")
        file_values = {k: v for k, v in loaded.items() if f"MONITOR_{k.upper()}" not in os.environ}
    try:
        return Settings(**{**file_values, **overrides})
    except ValidationError as exc:
        problems = "; ".join(
            f"MONITOR_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from exc
