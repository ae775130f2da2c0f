"""The one settings model of the monitor (pydantic-settings, prefix ``MONITOR_``).

Build it once at start-up with :func:`load_settings` and pass it down; no other
module reads the environment. An optional config file (JSON or YAML) named by
``MONITOR_CONFIG`` supplies defaults that environment variables override.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from monitor.errors import ConfigError
from monitor.taxonomy import Category, Severity

REPO_ROOT = Path(__file__).resolve().parent.parent
"""The checkout (or install prefix) holding ``lexicons/``, ``models/`` and ``samples/``."""


def _cpus() -> int:
    """The cores this process may run on (its affinity: a container's or taskset's share), else all."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_asr_workers() -> int:
    """One CTranslate2 decoder per core (at most 8): rooms' utterances decode side by side."""
    return min(8, _cpus())


def default_asr_threads() -> int:
    """The cores left per decoder (1 on a 2-core machine: two single-threaded decoders beat one
    two-threaded decoder for several rooms; measured in docs/SERVER.md)."""
    return max(1, _cpus() // default_asr_workers())


class TokenGrant(BaseModel):
    """What one bearer token may do: its role and, optionally, the rooms it is limited to.

    Unknown keys are refused (``{"role": "ingest", "room": [...]}`` would otherwise grant
    every room).
    """

    model_config = ConfigDict(extra="forbid")

    role: Literal["ingest", "anchor", "moderator", "admin", "inspector"]
    rooms: list[str] | None = None
    name: str | None = Field(
        default=None, max_length=128, description="Who holds the token (recorded with moderators' decisions)."
    )
    anchor_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="For role anchor: the anchor it belongs to (else its name); a start frame cannot change it.",
    )


class WebhookTarget(BaseModel):
    """One ``MONITOR_WEBHOOKS`` entry: where to POST matching alerts, decisions and viewer reports.

    ``rooms``/``categories`` limit what is sent (``None``: everything); ``min_severity`` applies
    to alerts and decisions. Unknown keys are refused.
    """

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2048, description="http:// or https:// URL that receives the POSTs.")
    secret: str = Field(min_length=16, max_length=512, description="HMAC-SHA256 key of X-Monitor-Signature.")
    rooms: list[str] | None = None
    categories: list[Category] | None = None
    min_severity: Severity = Severity.INFO

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"url {url!r} is not an http:// or https:// URL with a host")
        return url


class Settings(BaseSettings):
    """Every tunable of the monitor; each maps to ``MONITOR_<NAME>``.

    Each field's description is what ``monitor serve --help`` prints; units are in the names.
    """

    model_config = SettingsConfigDict(env_prefix="MONITOR_", extra="forbid")

    lexicon_dir: Path = Field(default=REPO_ROOT / "lexicons", description="Risk lexicons (YAML).")
    models_dir: Path = Field(default=REPO_ROOT / "models", description="Embedded models (classifier, Whisper).")
    data_dir: Path = Field(default=Path("data"), description="The evidence archive folder.")
    archive_retention_years: int = Field(
        default=3, ge=3, description="Years evidence is kept after its stream ends; legal minimum 3."
    )
    archive_retry_s: float = Field(
        default=5.0, gt=0, description="Seconds between attempts to open an archive that failed to open."
    )
    signing_key: Path | None = Field(
        default=None,
        description="Archive signing key (Ed25519 PEM, mode 0600) kept outside the data dir; "
        "default: <data_dir>/keys/signing_key.pem.",
    )

    # ASR (faster-whisper / CTranslate2)
    asr_model: Path | None = Field(
        default=None, description="Path to a CTranslate2 Whisper model; default: the embedded base model."
    )
    asr_device: str = Field(default="cpu", description="cpu or cuda.")
    asr_compute_type: str = Field(default="int8", description="CTranslate2 compute type.")
    asr_threads: int = Field(
        default_factory=default_asr_threads, ge=1, description="Threads per decoder (default: cores / decoders)."
    )
    asr_workers: int = Field(
        default_factory=default_asr_workers,
        ge=1,
        description="Decoders that may run at once (CTranslate2 workers; default: one per core, at most 8).",
    )
    asr_beam_size: int = Field(default=1, ge=1, le=10, description="Beam width of the Whisper decoder.")
    asr_bias: Literal["none", "base", "prompt_terms", "hotwords"] = Field(
        default="base", description="Decoder prompt: see docs/ASR.md (measured)."
    )
    asr_rescore: bool = Field(
        default=True, description="Lexicon rescoring: the decoder confirms sound-alike risk terms (docs/ASR.md)."
    )
    asr_window_s: float = Field(
        default=15.0,
        ge=5.0,
        le=30.0,
        description="Shortest Whisper encoder window: an utterance is padded to max(this, its length + 1 s) "
        "instead of 30 s; shorter is faster (docs/ASR.md).",
    )

    # Server
    host: str = Field(default="127.0.0.1", description="Address to listen on.")
    port: int = Field(default=8765, ge=0, le=65535, description="TCP port (0: any free one).")
    tokens: dict[str, TokenGrant] = Field(
        default_factory=dict, description='Bearer tokens: {"<token>": {"role", "rooms"?, "name"?, "anchor_id"?}}.'
    )
    # Cluster mode (docs/CLUSTER.md): unset, everything runs in one process
    broker_url: str | None = Field(
        default=None,
        description="nats://HOST:PORT of the NATS JetStream broker: serve runs as a gateway, "
        "with `monitor worker` and `monitor archiver` processes doing the transcription and the archive.",
    )
    gateway_id: str | None = Field(
        default=None, description="This gateway's name in cluster mode (default: host name and process id)."
    )
    cluster_metrics_port: int | None = Field(
        default=None, ge=0, le=65535, description="Port of /metrics for `monitor worker` and `monitor archiver`."
    )
    worker_batch_size: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="Most utterances `monitor worker` decodes in one batched search (default: 1 on CPU, where "
        "batching saved little and cost latency; 8 on a GPU).",
    )
    gateway_threads: int = Field(
        default=64, ge=1, description="Gateway threads waiting on workers and the archiver, shared by all rooms."
    )
    # Streaming server (`monitor serve`; docs/SERVER.md explains each; units are in the names)
    server_workers: int = Field(
        default_factory=default_asr_workers,
        ge=1,
        description="Threads transcribing + detecting + archiving, shared by all rooms (default: the decoders).",
    )
    max_frame_bytes: int = Field(default=131072, ge=2, description="Largest binary audio frame accepted.")
    max_pending_audio_s: float = Field(default=20.0, gt=0, description="Queued speech per room before reads pause.")
    max_ingest_speed: float = Field(default=8.0, gt=0, description="Sustained audio a room may send, x real time.")
    ingest_burst_s: float = Field(default=30.0, gt=0, description="Audio a room may send above that rate at once.")
    max_messages_per_s: int = Field(default=200, ge=1, description="Websocket messages per second per ingest socket.")
    stream_min_silence_ms: int = Field(default=350, ge=50, description="Silence that ends an utterance.")
    stream_max_utterance_s: float = Field(default=12.0, gt=1, description="Longest utterance before a forced cut.")
    dedup_window_s: float = Field(
        default=20.0, ge=0, description="Same rule again in a room within this (stream time): one reminder."
    )
    replay_buffer_alerts: int = Field(
        default=1000, ge=1, description="Alerts one `since=` replay sends (from memory, else from the archive)."
    )
    subscriber_queue_alerts: int = Field(
        default=256, ge=1, description="Unsent messages per subscriber before it is cut off (1013)."
    )
    resume_grace_s: float = Field(default=60.0, ge=0, description="How long a dropped room waits for a resume.")
    start_timeout_s: float = Field(default=10.0, gt=0, description="Time a new ingest socket has to send `start`.")
    handshake_timeout_s: float = Field(
        default=10.0, gt=0, description="Time a new TCP connection has to finish its HTTP/websocket handshake."
    )
    ping_interval_s: float = Field(default=20.0, gt=0, description="Keepalive ping interval.")
    ping_timeout_s: float = Field(default=20.0, gt=0, description="Missing pong after this closes the socket.")
    drain_timeout_s: float = Field(default=120.0, gt=0, description="Longest SIGTERM drain before exiting anyway.")
    # Bounds on clients (docs/SERVER.md, "Limits"); each refusal counts in monitor_limit_refusals_total
    max_open_sockets: int = Field(
        default=2000, ge=1, description="TCP connections held at once; more get HTTP 503 before the handshake."
    )
    max_pending_handshakes: int = Field(
        default=200, ge=1, description="Connections still in their handshake at once; more get HTTP 503."
    )
    max_sessions_per_token: int = Field(
        default=500, ge=1, description="Room sessions (streaming or in grace) one token may hold; more: 1013."
    )
    new_sessions_per_token_per_s: float = Field(
        default=5.0, gt=0, description="New room sessions per token per second (bursts of 4x); more: 1013."
    )
    decisions_per_moderator_per_s: float = Field(
        default=5.0, gt=0, description="Decisions per moderator per second (bursts of 4x); more: rate_limited."
    )
    # Webhooks (docs/SERVER.md, "Webhooks")
    webhooks: list[WebhookTarget] = Field(
        default_factory=list,
        description='Webhook targets: [{"url", "secret", "rooms"?, "categories"?, "min_severity"?}].',
    )
    webhook_timeout_s: float = Field(default=10.0, gt=0, description="Longest wait for one webhook delivery.")
    webhook_max_in_flight: int = Field(default=8, ge=1, description="Webhook deliveries under way at once.")
    webhook_retry_for_s: float = Field(
        default=86400.0, gt=0, description="How long a failing delivery is retried before it is dead-lettered."
    )
    webhook_backoff_max_s: float = Field(
        default=600.0, gt=0, description="Longest pause between two attempts of one delivery (back-off cap)."
    )
    # Pulled rooms (`POST /v1/rooms`: the server reads RTMP, HTTP-FLV, HLS, a media file itself)
    pull_timeout_s: float = Field(
        default=10.0, gt=0, description="A pulled source's connect and read timeout (no data this long: a drop)."
    )
    pull_retry_initial_s: float = Field(
        default=1.0, gt=0, description="First wait before reconnecting a dropped source; doubles per failure."
    )
    pull_retry_max_s: float = Field(default=30.0, gt=0, description="Longest wait between reconnects.")
    pull_max_failures: int = Field(
        default=10, ge=1, description="Failed attempts in a row before a pulled room is reported failed."
    )
    # Operations
    log_format: Literal["text", "json"] = Field(
        default="text", description="Log lines: text, or json (one object a line, with room_id/session_id)."
    )
    # Moderator console (`/console`, docs/CONSOLE.md)
    console_session_ttl_s: float = Field(default=12 * 3600.0, gt=0, description="Sign-in cookie lifetime.")
    console_cookie_secure: bool = Field(
        default=False, description="Add `Secure` to the cookie (set it when served over https)."
    )


NON_SETTING_VARIABLES = frozenset({"MONITOR_CONFIG", "MONITOR_TEST_CHROMIUM"})
"""``MONITOR_*`` variables that are not settings (the config file's path, the test suite's browser)."""


def setting_names() -> frozenset[str]:
    """The ``MONITOR_*`` variable of every setting."""
    return frozenset(f"MONITOR_{name.upper()}" for name in Settings.model_fields)


def _unknown_variables(environ: dict[str, str]) -> list[str]:
    known = setting_names() | NON_SETTING_VARIABLES
    return sorted(name for name in environ if name.upper().startswith("MONITOR_") and name.upper() not in known)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def load_settings(**overrides: Any) -> Settings:
    """Settings from the optional config file, then ``MONITOR_*`` variables, then ``overrides``.

    Raises :class:`ConfigError` (one line) naming the offending setting: an unknown
    ``MONITOR_*`` variable, an unknown key in the config file or in a token entry, a
    value that does not parse (``MONITOR_TOKENS='not json'``) or is out of range.
    """
    unknown = _unknown_variables(dict(os.environ))
    if unknown:
        raise ConfigError(
            f"unknown setting {unknown[0]}: not one of the MONITOR_* settings (see `monitor serve --help`)"
        )
    file_values: dict[str, Any] = {}
    config_path = os.environ.get("MONITOR_CONFIG")
    if config_path:
        try:
            text = Path(config_path).read_text(encoding="utf-8")
            loaded = json.loads(text) if config_path.endswith(".json") else yaml.safe_load(text)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            raise ConfigError(f"MONITOR_CONFIG={config_path}: cannot read config file: {_first_line(exc)}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"MONITOR_CONFIG={config_path}: config file must hold a mapping")
        extra = sorted(str(k) for k in loaded if str(k) not in Settings.model_fields)
        if extra:
            raise ConfigError(f"MONITOR_CONFIG={config_path}: unknown setting {extra[0]!r}")
        file_values = {k: v for k, v in loaded.items() if f"MONITOR_{k.upper()}" not in os.environ}
    try:
        return Settings(**{**file_values, **overrides})
    except SettingsError as exc:
        # raised while parsing a variable's text (e.g. MONITOR_TOKENS that is not JSON)
        field = re.search(r'field "(\w+)"', str(exc))
        name = f"MONITOR_{field.group(1).upper()}" if field else "a MONITOR_* variable"
        cause = exc.__cause__
        detail = _first_line(cause) if cause is not None else _first_line(exc)
        raise ConfigError(f"invalid setting {name}: not valid JSON ({detail})") from exc
    except ValidationError as exc:
        err = exc.errors()[0]
        where = f"MONITOR_{'_'.join(str(p) for p in err['loc'][:1]).upper()}"
        inner = ".".join(str(p) for p in err["loc"][1:])
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        what = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        raise ConfigError(f"invalid setting {where}{f' at {inner}' if inner else ''}: {what}{more}") from exc
