"""What an ingest stream yields: the server's frames as typed events, plus the client's own notices.

Server frames (docs/PROTOCOL.md, "Frames the server sends") are parsed into pydantic
models that accept fields added by later servers (``extra="allow"``), so an SDK older than
the server keeps working. Every event has ``type``; match on it or on the class::

    async for event in events:
        if event.type == "alert":        # Alert
            ...
        elif event.type == "transcript": # Transcript
            ...

Client-side notices (never sent by the server): :class:`Reconnecting` when the connection
dropped and the stream is being resumed, :class:`AudioGap` when a resume found the server
missing audio the client no longer held (the gap was filled with silence).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError


class _ServerFrame(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class Ready(_ServerFrame):
    """The server accepted ``start``: ``next_seq`` is the byte offset it expects next."""

    type: Literal["ready"] = "ready"
    session_id: str
    next_seq: int
    stream_time: float = 0.0
    resumed: bool = False


class Transcript(_ServerFrame):
    """One utterance as heard; ``start``/``end`` are seconds of stream time."""

    type: Literal["transcript"] = "transcript"
    final: bool = True
    start: float
    end: float
    text: str
    heard: str | None = None
    """The decoder's first pass when lexicon rescoring rewrote a misheard risk term."""


class Alert(_ServerFrame):
    """The anchor's reminder; the contract's alert fields (shared/PROTOCOL.md, "Alert fields")."""

    type: Literal["alert"] = "alert"
    alert_id: str
    room_id: str | None = None
    anchor_id: str | None = None
    category: str
    severity: str
    rule_id: str
    matched: str
    source: str
    confidence: float
    text: str
    start: float | None = None
    end: float | None = None
    reminder: str
    regulation: str | None = None
    lexicon_version: str | None = None
    model_version: str | None = None
    evidence_id: str | None = None
    emitted_at: str | None = None

    def fields(self) -> dict[str, Any]:
        """The alert's fields as the server sent them, without ``type`` (what ``scan --jsonl`` prints)."""
        data = self.model_dump(mode="json")
        del data["type"]
        return data


class ServerError(_ServerFrame):
    """An ``error`` frame; ``fatal`` ones end the connection (the stream decides whether to resume)."""

    type: Literal["error"] = "error"
    code: str
    message: str
    fatal: bool = False


class Stopped(_ServerFrame):
    """The session is over (``reason`` ``stop`` or ``shutdown``); every alert was sent before it."""

    type: Literal["stopped"] = "stopped"
    session_id: str | None = None
    reason: str = "stop"
    next_seq: int = 0
    stream_time: float = 0.0
    alerts: int = 0
    utterances: int = 0
    transcript_record: str | None = None


class OtherFrame(_ServerFrame):
    """A frame type this SDK does not know (a newer server); passed on untouched."""

    type: str


class Reconnecting(BaseModel):
    """The connection ended without ``stopped``; the stream reconnects after ``delay_s`` and resumes."""

    model_config = ConfigDict(frozen=True)

    type: Literal["reconnecting"] = "reconnecting"
    attempt: int
    reason: str
    delay_s: float


class AudioGap(BaseModel):
    """A resume found the server missing bytes ``[from_seq, to_seq)`` the client no longer held.

    They were sent as silence so stream time stays exact; what was said there is lost.
    """

    model_config = ConfigDict(frozen=True)

    type: Literal["gap"] = "gap"
    from_seq: int
    to_seq: int
    seconds: float


ServerEvent = Ready | Transcript | Alert | ServerError | Stopped | OtherFrame
Event = ServerEvent | Reconnecting | AudioGap

_FRAME_MODELS: dict[str, type[_ServerFrame]] = {
    "ready": Ready,
    "transcript": Transcript,
    "alert": Alert,
    "error": ServerError,
    "stopped": Stopped,
}


class BadServerFrame(ValueError):
    """A text frame from the server that is not a JSON object with a known shape."""


def parse_server_frame(text: str | bytes) -> ServerEvent:
    """The event for one text frame the server sent; :class:`BadServerFrame` if it is unusable."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadServerFrame(f"server frame is not JSON: {str(text)[:80]!r}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise BadServerFrame(f"server frame has no type: {str(text)[:80]!r}")
    model = _FRAME_MODELS.get(data["type"], OtherFrame)
    try:
        return model.model_validate(data)  # type: ignore[return-value]
    except ValidationError as exc:
        raise BadServerFrame(f"{data['type']} frame: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") from exc
