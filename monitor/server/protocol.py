"""The wire vocabulary of the streaming server: client frames, server frames, error codes.

Client JSON is parsed into pydantic models (:func:`parse_start`, :func:`parse_control`);
anything that does not fit raises :class:`~monitor.errors.ProtocolError` carrying one
of the documented :class:`ErrorCode` values and, for fatal errors, the websocket close
code to end the session with. docs/PROTOCOL.md documents every code.
"""

from __future__ import annotations

import json
from enum import Enum, StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from monitor.errors import ProtocolError
from monitor.room import RoomContext

SUPPORTED_SAMPLE_RATES: tuple[int, ...] = (8000, 16000, 22050, 24000, 44100, 48000)
"""Declared ``sample_rate`` values accepted on ``/v1/ingest`` (resampled to 16 kHz)."""

SUPPORTED_ENCODINGS: tuple[str, ...] = ("pcm_s16le",)

MAX_CONTROL_FRAME_BYTES = 16384
"""Largest text frame (start, stop) parsed; longer text is rejected unread."""

MAX_ID_CHARS = 128
"""Longest ``room_id`` / ``anchor_id``."""


class CloseCode(int, Enum):
    """Websocket close codes the server uses (RFC 6455 section 7.4.1)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    UNSUPPORTED_DATA = 1003
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    TRY_AGAIN_LATER = 1013


class ErrorCode(StrEnum):
    """Machine-readable ``code`` of an ``error`` frame (docs/PROTOCOL.md, "Errors")."""

    EXPECTED_START = "expected_start"
    BAD_START = "bad_start"
    START_TIMEOUT = "start_timeout"
    UNSUPPORTED_SAMPLE_RATE = "unsupported_sample_rate"
    UNSUPPORTED_ENCODING = "unsupported_encoding"
    UNSUPPORTED_CHANNELS = "unsupported_channels"
    FORBIDDEN_ROOM = "forbidden_room"
    ROOM_BUSY = "room_busy"
    SEQ_AHEAD = "seq_ahead"
    RESUME_MISMATCH = "resume_mismatch"
    ODD_FRAME = "odd_frame"
    FRAME_TOO_LARGE = "frame_too_large"
    UNEXPECTED_TEXT = "unexpected_text"
    FLOOD = "flood"
    THROTTLED = "throttled"
    SUPERSEDED = "superseded"
    SHUTTING_DOWN = "shutting_down"
    INTERNAL = "internal"
    BAD_DECISION = "bad_decision"
    DECISION_REFUSED = "decision_refused"
    IGNORED_FIELD = "ignored_field"
    TOO_MANY_SESSIONS = "too_many_sessions"
    RATE_LIMITED = "rate_limited"


FATAL_CLOSE_CODES: dict[ErrorCode, CloseCode] = {
    ErrorCode.EXPECTED_START: CloseCode.POLICY_VIOLATION,
    ErrorCode.BAD_START: CloseCode.POLICY_VIOLATION,
    ErrorCode.START_TIMEOUT: CloseCode.POLICY_VIOLATION,
    ErrorCode.UNSUPPORTED_SAMPLE_RATE: CloseCode.UNSUPPORTED_DATA,
    ErrorCode.UNSUPPORTED_ENCODING: CloseCode.UNSUPPORTED_DATA,
    ErrorCode.UNSUPPORTED_CHANNELS: CloseCode.UNSUPPORTED_DATA,
    ErrorCode.FORBIDDEN_ROOM: CloseCode.POLICY_VIOLATION,
    ErrorCode.ROOM_BUSY: CloseCode.TRY_AGAIN_LATER,
    ErrorCode.TOO_MANY_SESSIONS: CloseCode.TRY_AGAIN_LATER,
    ErrorCode.SEQ_AHEAD: CloseCode.POLICY_VIOLATION,
    ErrorCode.RESUME_MISMATCH: CloseCode.POLICY_VIOLATION,
    ErrorCode.FRAME_TOO_LARGE: CloseCode.MESSAGE_TOO_BIG,
    ErrorCode.SUPERSEDED: CloseCode.POLICY_VIOLATION,
    ErrorCode.SHUTTING_DOWN: CloseCode.GOING_AWAY,
    ErrorCode.INTERNAL: CloseCode.INTERNAL_ERROR,
}
"""Close code for every error that ends the session; codes not listed are recoverable."""


def fatal(code: ErrorCode, message: str) -> ProtocolError:
    """A session-ending :class:`ProtocolError`; close with ``FATAL_CLOSE_CODES[code]``."""
    return ProtocolError(code.value, message, fatal=True)


def recoverable(code: ErrorCode, message: str) -> ProtocolError:
    """A :class:`ProtocolError` answered with an ``error`` frame; the session goes on."""
    return ProtocolError(code.value, message, fatal=False)


def close_code_for(error: ProtocolError) -> CloseCode:
    """The websocket close code that ends a session after the fatal ``error``."""
    try:
        return FATAL_CLOSE_CODES[ErrorCode(error.code)]
    except (ValueError, KeyError):
        return CloseCode.POLICY_VIOLATION


class StartFrame(BaseModel):
    """The first frame on ``/v1/ingest`` (PROTOCOL.md). ``seq`` is a byte offset (see :attr:`seq`)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["start"]
    room_id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    anchor_id: str | None = Field(default=None, max_length=MAX_ID_CHARS)
    sample_rate: int
    encoding: str
    channels: int = 1
    seq: int | None = Field(
        default=None,
        ge=0,
        description="Resume: byte offset in this room's PCM stream of the next byte the client sends.",
    )
    session_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Resume from another token: the session_id the server's ready frame gave.",
    )
    context: RoomContext | None = None


class StopFrame(BaseModel):
    """``{"type":"stop"}``: flush the room, send every alert, then ``stopped``."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["stop"]


class DecisionFrame(BaseModel):
    """A moderator's decision, sent on ``/v1/alerts`` (docs/PROTOCOL.md, "Decisions")."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["decision"]
    evidence_id: str = Field(min_length=1, max_length=64)
    decision: Literal["confirm", "dismiss", "inspect"]
    reason: str | None = Field(default=None, max_length=1000)
    request_id: str | None = Field(default=None, max_length=64)


def parse_decision(message: str | bytes) -> DecisionFrame:
    """A text frame a subscriber sent: only ``decision`` is valid (recoverable ``bad_decision``)."""
    if isinstance(message, bytes):
        raise recoverable(ErrorCode.BAD_DECISION, f"binary frame ({len(message)} bytes) on /v1/alerts; ignored")
    data = _load_json(message, "decision frame", ErrorCode.BAD_DECISION, is_fatal=False)
    try:
        return DecisionFrame.model_validate(data)
    except ValidationError as exc:
        raise recoverable(ErrorCode.BAD_DECISION, f"decision frame: {_describe(exc)}") from exc


def _load_json(text: str, what: str, code: ErrorCode, *, is_fatal: bool) -> Any:
    make = fatal if is_fatal else recoverable
    if len(text) > MAX_CONTROL_FRAME_BYTES:
        raise make(code, f"{what}: text frame of {len(text)} characters is over {MAX_CONTROL_FRAME_BYTES}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise make(code, f"{what}: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from exc
    except RecursionError as exc:
        raise make(code, f"{what}: JSON nested too deeply") from exc
    except ValueError as exc:  # e.g. an integer of thousands of digits (int_max_str_digits)
        raise make(code, f"{what}: unusable JSON value ({str(exc)[:120]})") from exc


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "frame"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def parse_start(message: str | bytes) -> StartFrame:
    """The ``start`` frame in ``message``, or a fatal :class:`ProtocolError` naming the problem.

    Checks, in order: a text frame, JSON, ``type == "start"``, the fields' types, then the
    supported ``encoding``, ``channels`` and ``sample_rate``.
    """
    if isinstance(message, bytes):
        raise fatal(
            ErrorCode.EXPECTED_START,
            f"first frame is binary ({len(message)} bytes); send a JSON start frame before any audio",
        )
    data = _load_json(message, "start frame", ErrorCode.BAD_START, is_fatal=True)
    if not isinstance(data, dict) or data.get("type") != "start":
        kind = data.get("type") if isinstance(data, dict) else type(data).__name__
        raise fatal(ErrorCode.EXPECTED_START, f'first frame must have type "start", got {kind!r}')
    try:
        start = StartFrame.model_validate(data)
    except ValidationError as exc:
        raise fatal(ErrorCode.BAD_START, f"start frame: {_describe(exc)}") from exc
    if start.encoding not in SUPPORTED_ENCODINGS:
        raise fatal(
            ErrorCode.UNSUPPORTED_ENCODING,
            f"start frame: encoding {start.encoding!r} is not supported; "
            f"use one of {list(SUPPORTED_ENCODINGS)}",
        )
    if start.channels != 1:
        raise fatal(
            ErrorCode.UNSUPPORTED_CHANNELS,
            f"start frame: channels={start.channels} is not supported; send mono (channels=1)",
        )
    if start.sample_rate not in SUPPORTED_SAMPLE_RATES:
        raise fatal(
            ErrorCode.UNSUPPORTED_SAMPLE_RATE,
            f"start frame: sample_rate={start.sample_rate} is not supported; "
            f"use one of {list(SUPPORTED_SAMPLE_RATES)}",
        )
    return start


def parse_control(message: str) -> StopFrame:
    """A text frame of the audio phase; only ``stop`` is valid (recoverable error otherwise)."""
    data = _load_json(message, "text frame", ErrorCode.UNEXPECTED_TEXT, is_fatal=False)
    try:
        return StopFrame.model_validate(data)
    except ValidationError as exc:
        raise recoverable(
            ErrorCode.UNEXPECTED_TEXT,
            f'text frame during audio: only {{"type":"stop"}} is accepted ({_describe(exc)}); frame ignored',
        ) from exc


def error_frame(error: ProtocolError) -> dict[str, Any]:
    """The ``error`` frame for ``error`` (``fatal`` tells the client whether the session ends)."""
    return {"type": "error", "code": error.code, "message": str(error), "fatal": error.fatal}


def encode(frame: dict[str, Any]) -> str:
    """A server frame as compact UTF-8 JSON text (Chinese kept readable)."""
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))
