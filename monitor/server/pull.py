"""Pull mode: rooms whose audio the server fetches from a URL itself (``POST /v1/rooms``).

A platform that already has the stream (RTMP, HTTP-FLV, HLS, a plain media file) names it
instead of pushing PCM over ``/v1/ingest``. Each pulled room is a
:class:`~monitor.server.session.RoomSession` like an ingest room (alerts, archive,
console, ``GET /v1/rooms``); its "connection" is a :class:`PulledRoom`:

* a :class:`~monitor.server.pull_source.SourceReader` on a thread of its own opens and
  decodes the URL and reconnects with back-off after drops;
* a task on the event loop moves the decoded PCM from the bounded
  :class:`~monitor.server.pull_source.PcmBuffer` into the session, waiting while the
  session has no capacity. A live source cannot wait, so meanwhile the buffer drops its
  oldest audio (``monitor_pull_dropped_audio_seconds_total``); the room is fed that much
  silence instead, so stream time stays the source's and later alerts' ``start``/``end``
  still point into the recording;
* a source that fails for good (``pull_max_failures`` failed attempts in a row, or an
  answer that retrying cannot change: HTTP 4xx, data that is not audio) is reported as a
  room event ``{"type":"room","event":"error",...}`` on ``/v1/alerts?include=rooms`` and in
  ``GET /v1/rooms`` (``source.state: failed``, ``source.last_error``) until it is deleted or
  pulled again; what it sent is flushed and archived. A finite source read to its end
  closes its room like a ``stop``.

``DELETE /v1/rooms/{room_id}`` stops a pulled room (flushed and archived); a drain stops
every reader and the server flushes the rooms as it does all others.
"""

# no `from __future__ import annotations`: FastAPI reads the routes' annotations, which name local dependencies
import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.requests import Request
from starlette.responses import Response

from monitor.asr.audio import SAMPLE_RATE
from monitor.config import Settings, TokenGrant
from monitor.errors import ProtocolError
from monitor.room import RoomContext
from monitor.server.auth import Grant, SessionLookup, api_grant
from monitor.server.hub import AlertHub
from monitor.server.logs import bound_room
from monitor.server.metrics import ServerMetrics
from monitor.server.protocol import MAX_ID_CHARS, ErrorCode
from monitor.server.pull_source import (
    ALLOWED_SCHEMES,
    PcmBuffer,
    ReconnectPolicy,
    SourceReader,
    SourceState,
    redact_url,
)
from monitor.server.responses import Refusal, json_response
from monitor.server.session import RoomSession

log = logging.getLogger(__name__)

PULL_BUFFER_S = 10.0
"""Decoded audio held between a room's reader thread and its session; a live source drops its oldest beyond it."""

PULL_FEED_S = 0.5
"""Most audio handed to the session at once (the event loop runs VAD on it)."""

MAX_URL_CHARS = 4096

PULL_ROLES = frozenset({"ingest", "admin"})

SHOWN_STATES = (SourceState.CONNECTING, SourceState.STREAMING, SourceState.RETRYING, SourceState.FAILED)
"""The states ``monitor_pulled_rooms{state}`` counts."""


class PullRequest(BaseModel):
    """The body of ``POST /v1/rooms``."""

    model_config = ConfigDict(extra="forbid")

    room_id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    anchor_id: str | None = Field(default=None, max_length=MAX_ID_CHARS)
    url: str = Field(min_length=1, max_length=MAX_URL_CHARS, description="rtmp://, rtmps://, http:// or https://")
    context: RoomContext | None = None

    @field_validator("url")
    @classmethod
    def _network_url(cls, url: str) -> str:
        try:
            parts = urlsplit(url)
            host = parts.hostname
        except ValueError as exc:
            raise ValueError(f"not a URL ({exc})") from None
        if parts.scheme.lower() not in ALLOWED_SCHEMES:
            raise ValueError(f"scheme {parts.scheme or '(none)'!r} is not one of {sorted(ALLOWED_SCHEMES)}")
        if not host:
            raise ValueError("the URL has no host")
        return url


OpenSession = Callable[..., RoomSession]
"""``open_session(room_id=, anchor_id=, context=, opened_by=, connection=)``: the server's
:meth:`~monitor.server.app.MonitorServer.open_pulled_session`; raises ProtocolError when refused."""


class PulledRoom:
    """The source of one pulled room and the task feeding its session (module docstring).

    It is the session's ``connection`` (:class:`~monitor.server.session.RoomSocket`): a room
    resumed over ``/v1/ingest`` (``start`` with ``seq`` and the ``session_id``) takes over
    from it (:meth:`supersede`).
    """

    def __init__(self, request: PullRequest, settings: Settings, metrics: ServerMetrics, hub: AlertHub) -> None:
        self.request = request
        self.room_id = request.room_id
        self.shown_url = redact_url(request.url)
        self._metrics = metrics
        self._hub = hub
        self.state = SourceState.CONNECTING
        self.last_error: str | None = None
        self.session: RoomSession | None = None
        self.summary: dict[str, Any] | None = None  # the session's "stopped" frame
        self.on_state: Callable[[PulledRoom], None] | None = None
        self.on_closed: Callable[[PulledRoom], None] | None = None
        self._ready = asyncio.Event()
        self._reader_done = False
        self._loop = asyncio.get_running_loop()
        self.buffer = PcmBuffer(int(PULL_BUFFER_S * SAMPLE_RATE) * 2, on_ready=self._wake)
        policy = ReconnectPolicy(
            initial_delay_s=settings.pull_retry_initial_s,
            max_delay_s=settings.pull_retry_max_s,
            max_failures=settings.pull_max_failures,
        )
        self.reader = SourceReader(request.url, self.buffer, policy, report=self._report_threadsafe,
                                   timeout_s=settings.pull_timeout_s)
        self._task: asyncio.Task[None] | None = None
        self._outbox_task: asyncio.Task[None] | None = None

    # -- what GET /v1/rooms shows --------------------------------------------------------
    def source_info(self) -> dict[str, Any]:
        return {"url": self.shown_url, "state": self.state.value, "last_error": self.last_error,
                "connects": self.reader.connects}

    @property
    def live(self) -> bool:
        """Still pulling (not failed, ended or stopped)."""
        return self.state in (SourceState.CONNECTING, SourceState.STREAMING, SourceState.RETRYING)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, session: RoomSession) -> None:
        """Begin pulling into ``session`` (already registered, with this room as its connection)."""
        self.session = session
        with bound_room(session.room_id, session.session_id):  # the tasks' log records name the room
            self._task = asyncio.create_task(self._run(), name=f"pull:{self.room_id}")
            self._outbox_task = asyncio.create_task(self._drain_outbox(), name=f"pull-outbox:{self.room_id}")
        extra = {"room_id": session.room_id, "session_id": session.session_id}
        threading.Thread(target=self._read, args=(extra,), name=f"pull:{self.room_id}", daemon=True).start()
        log.info("room %s: pulling %s", self.room_id, self.shown_url, extra=extra)

    def _read(self, extra: dict[str, str]) -> None:
        self.reader.log_extra = extra
        self.reader.run()

    async def stop(self, reason: str) -> dict[str, Any] | None:
        """Stop pulling, flush and archive the room; the session's ``stopped`` summary."""
        self.reader.stop()
        if self.live:
            self._set_state(SourceState.STOPPED, self.last_error)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.session is not None:
            await self.session.finish(reason)
        await self._end_outbox()
        self._closed()
        return self.summary

    def halt(self) -> None:
        """Server drain: stop the reader and the feeding task; the server flushes the session."""
        self.reader.stop()
        if self._task is not None:
            self._task.cancel()
        if self.live:
            self._set_state(SourceState.STOPPED, self.last_error)

    def supersede(self) -> None:
        """An ingest connection resumed this room's session: stop pulling, leave the session to it."""
        log.info("room %s: an ingest connection took over; no longer pulling %s", self.room_id, self.shown_url)
        self.halt()
        if self._outbox_task is not None:
            self._outbox_task.cancel()
        self._closed()

    # -- reader thread -> event loop ---------------------------------------------------------
    def _wake(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: the server is gone
            self._loop.call_soon_threadsafe(self._ready.set)

    def _report_threadsafe(self, state: SourceState, error: str | None) -> None:
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._on_report, state, error)

    def _on_report(self, state: SourceState, error: str | None) -> None:
        if state in (SourceState.FAILED, SourceState.ENDED, SourceState.STOPPED):
            self._reader_done = True
            self._ready.set()
        if not self.live:
            return  # stopped from this side, or already final
        if state == SourceState.RETRYING:
            self._metrics.pull_reconnects.inc()
        self._set_state(state, error)

    def _set_state(self, state: SourceState, error: str | None) -> None:
        self.state = state
        self.last_error = error
        if self.on_state is not None:
            self.on_state(self)

    # -- event loop: PCM into the session --------------------------------------------------------
    async def _run(self) -> None:
        session = self.session
        assert session is not None  # set by start()
        try:
            await self._pump(session)
        except Exception:  # the room ends and says why; the server carries on
            log.exception("room %s: feeding the pulled audio failed", self.room_id)
            self.reader.stop()
            self._set_state(SourceState.FAILED, "internal error while feeding the room")
        if self.state == SourceState.FAILED:
            self._metrics.pull_failures.inc()
            self._hub.publish_event({"type": "room", "event": "error", "room_id": self.room_id,
                                     "anchor_id": session.anchor_id, "session_id": session.session_id,
                                     "message": self.last_error, "source": self.source_info()})
        reason = "source failed" if self.state == SourceState.FAILED else "source ended"
        if self.state == SourceState.STREAMING:
            self._set_state(SourceState.ENDED, None)
        await session.finish(reason)
        await self._end_outbox()
        self._closed()

    async def _pump(self, session: RoomSession) -> None:
        """Feed the buffered PCM until the reader has ended and the buffer is empty."""
        max_take = int(PULL_FEED_S * SAMPLE_RATE) * 2
        while not session.finishing:
            if not session.capacity.is_set():
                self._metrics.frames_throttled.labels(reason="pull_backlog").inc()
                await session.capacity.wait()
                continue
            dropped, pcm = self.buffer.take(max_take)
            if dropped:
                self._metrics.pull_dropped_audio_seconds.inc(dropped / 2 / SAMPLE_RATE)
                for at in range(0, dropped, max_take):  # silence in place of the dropped audio
                    session.feed_audio(bytes(min(max_take, dropped - at)))
                    await asyncio.sleep(0)
            if pcm:
                session.feed_audio(pcm)
                await asyncio.sleep(0)
                continue
            if self._reader_done:
                return
            self._ready.clear()
            await self._ready.wait()

    async def _drain_outbox(self) -> None:
        """Nobody reads a pulled room's frames (alerts go out through the hub): discard them, keep ``stopped``."""
        session = self.session
        assert session is not None
        while True:
            await session.outbox_ready.wait()
            session.outbox_ready.clear()
            while session.outbox:
                frame = session.outbox.popleft()
                if frame["type"] == "stopped":
                    self.summary = frame
                    return

    async def _end_outbox(self) -> None:
        if self._outbox_task is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._outbox_task), 1.0)
            self._outbox_task.cancel()

    def _closed(self) -> None:
        if self.on_closed is not None:
            self.on_closed(self)
            self.on_closed = None


class PullRooms:
    """The pulled rooms of one server, by ``room_id``: live ones and failed ones (until deleted)."""

    def __init__(self, settings: Settings, metrics: ServerMetrics, hub: AlertHub, open_session: OpenSession) -> None:
        self._settings = settings
        self._metrics = metrics
        self._hub = hub
        self._open_session = open_session
        self._rooms: dict[str, PulledRoom] = {}

    def get(self, room_id: str) -> PulledRoom | None:
        return self._rooms.get(room_id)

    def open(self, request: PullRequest, grant: Grant) -> PulledRoom:
        """Open the room's session and start pulling; ProtocolError (room_busy, too_many_sessions,
        shutting_down) when the server refuses the room."""
        room = PulledRoom(request, self._settings, self._metrics, self._hub)
        session = self._open_session(
            room_id=request.room_id, anchor_id=request.anchor_id, context=request.context,
            opened_by=grant.client_key, connection=room,
        )
        previous = self._rooms.get(request.room_id)
        if previous is not None:
            previous.on_closed = None  # a failed room pulled again: the new one takes its place
        self._rooms[request.room_id] = room
        room.on_state = lambda _: self._count()
        room.on_closed = self._forget
        room.start(session)
        self._count()
        return room

    async def delete(self, room_id: str) -> dict[str, Any] | None:
        """Stop the pulled room (flushed and archived) and forget it; None if there is none."""
        room = self._rooms.get(room_id)
        if room is None:
            return None
        room.on_closed = None
        summary = await room.stop("stopped by DELETE /v1/rooms")
        self._rooms.pop(room_id, None)
        self._count()
        return summary or {"session_id": room.session.session_id if room.session else None}

    def halt_all(self) -> None:
        """Server drain: stop every reader (the server flushes the sessions)."""
        for room in list(self._rooms.values()):
            room.halt()

    def failed_rooms(self) -> list[PulledRoom]:
        """Pulled rooms whose source failed and whose session has ended (still listed until deleted)."""
        return [r for r in self._rooms.values()
                if r.state == SourceState.FAILED and r.session is not None and r.session.finished.is_set()]

    def _forget(self, room: PulledRoom) -> None:
        if room.state != SourceState.FAILED and self._rooms.get(room.room_id) is room:
            del self._rooms[room.room_id]
        self._count()

    def _count(self) -> None:
        for state in SHOWN_STATES:
            self._metrics.pulled_rooms.labels(state=state.value).set(
                sum(1 for r in self._rooms.values() if r.state == state)
            )


def add_pull_routes(
    app: FastAPI,
    pulls: PullRooms,
    tokens: Mapping[str, TokenGrant],
    sessions: SessionLookup,
    *,
    describe: Callable[[RoomSession], dict[str, Any]],
    ready: Callable[[], bool],
) -> None:
    """``POST /v1/rooms`` (pull a URL into a room) and ``DELETE /v1/rooms/{room_id}``; JSON errors."""

    grant = api_grant(tokens, sessions)

    def puller(request: Request) -> Grant:
        found = grant(request)
        if found.role not in PULL_ROLES:
            raise Refusal(403, f"role {found.role!r} may not pull rooms (ingest or admin)", code="forbidden",
                          as_json=True)
        return found

    @app.post(
        "/v1/rooms", status_code=201, tags=["rooms"],
        summary="Pull a stream (RTMP, HTTP-FLV, HLS, a media file) into a room",
        responses={
            201: {"description": "the room, with its session_id and source (url redacted, state)"},
            400: {"description": "a bad field (named): room_id, url (scheme rtmp/rtmps/http/https)..."},
            401: {"description": "no or unknown token"},
            403: {"description": "role other than ingest/admin, or room outside the token's rooms"},
            409: {"description": "the room is live (pulled or streaming over /v1/ingest)"},
            429: {"description": "too many sessions for this token"},
            501: {"description": "cluster mode (MONITOR_BROKER_URL): pulled rooms not available yet"},
            503: {"description": "models loading or server draining"},
        },
    )
    async def pull_room(grant: Annotated[Grant, Depends(puller)], body: PullRequest) -> Response:
        if not grant.may_see(body.room_id):
            raise Refusal(403, f"token is not scoped to room {body.room_id!r}", code="forbidden", as_json=True)
        if not ready():
            raise Refusal(503, "not ready: models loading or server draining", code="not_ready", as_json=True)
        try:
            room = pulls.open(body, grant)
        except ProtocolError as exc:
            status = {ErrorCode.ROOM_BUSY.value: 409, ErrorCode.TOO_MANY_SESSIONS.value: 429,
                      "not_supported": 501}.get(str(exc.code), 503)
            raise Refusal(status, str(exc), code=str(exc.code), as_json=True) from exc
        assert room.session is not None  # started
        return json_response(201, describe(room.session))

    @app.delete(
        "/v1/rooms/{room_id}", tags=["rooms"], summary="Stop a pulled room (flushed and archived)",
        responses={
            200: {"description": "the room's end: session_id, stream_time, alerts, utterances, transcript_record"},
            401: {"description": "no or unknown token"},
            403: {"description": "role other than ingest/admin, or room outside the token's rooms"},
            404: {"description": "no pulled room of that id"},
        },
    )
    async def stop_room(grant: Annotated[Grant, Depends(puller)], room_id: str) -> Response:
        if not grant.may_see(room_id):
            raise Refusal(403, f"token is not scoped to room {room_id!r}", code="forbidden", as_json=True)
        summary = await pulls.delete(room_id)
        if summary is None:
            raise Refusal(404, f"no pulled room {room_id!r}", code="not_found", as_json=True)
        return json_response(200, {"room_id": room_id, **{k: v for k, v in summary.items() if k != "type"}})
