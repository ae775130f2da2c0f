"""Stream audio into a running server's ``/v1/ingest`` and get its transcripts and alerts back.

:class:`IngestClient` holds where to connect and how to resume; :meth:`IngestClient.stream`
(any async iterator of PCM) and :meth:`IngestClient.push_file` (a file or URL) return an
:class:`IngestStream`: enter it with ``async with`` and iterate it for events
(:mod:`monitor.client.events`) as they arrive. The stream:

* sends ``start``, then the audio in frames of ``frame_ms`` (100 ms), then ``stop``, and ends
  after the server's ``stopped``, i.e. once every alert of the stream has been received;
* paces the audio at ``speed`` times real time (``None``/``0``: as fast as the source and the
  server allow; a live source paces itself);
* awaits every websocket send, so a server that reads slowly (``throttled``) slows the source:
  nothing queues without bound (:data:`MAX_QUEUED_FRAMES` frames ahead of the socket,
  :data:`MAX_QUEUED_EVENTS` events ahead of the consumer);
* resumes on its own after a dropped connection, or a server that shut down mid-stream: it
  reconnects with back-off (:data:`RECONNECT_DELAYS_S`) and sends ``start`` with ``seq`` and
  ``session_id``, then the audio again from the oldest byte it still holds (the last
  ``max_resend_audio_s`` seconds sent since the server last confirmed ``next_seq``; the server
  discards what it already has). Alerts (by ``alert_id``) and transcripts (by ``end``) that a
  resumed connection delivers twice are passed on once.

Alerts the server wrote into a connection in the instant it died are not sent again on
``/v1/ingest``; they are archived and replayed on ``/v1/alerts?since=`` (docs/PROTOCOL.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections import OrderedDict
from collections.abc import AsyncIterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from monitor.client.audio import SAMPLE_RATE, file_audio
from monitor.client.errors import HandshakeRefused, ResumeFailed, ServerUnreachable, StreamRefused
from monitor.client.events import (
    Alert,
    AudioGap,
    BadServerFrame,
    Event,
    Ready,
    Reconnecting,
    ServerError,
    ServerEvent,
    Stopped,
    Transcript,
    parse_server_frame,
)
from monitor.client.resend import ResendBuffer

log = logging.getLogger(__name__)

FRAME_MS = 100
"""Audio per binary frame, in milliseconds (docs/PROTOCOL.md: 100 ms frames are a good choice)."""

RESEND_FRAME_BYTES = 32768
"""Largest frame when audio is sent again after a resume (below the server's ``max_frame_bytes``)."""

MAX_RESEND_AUDIO_S = 30.0
"""Seconds of sent, unconfirmed audio kept to send again after a dropped connection."""

MAX_QUEUED_FRAMES = 8
"""Frames taken from the source ahead of the socket (back-pressure reaches the source beyond)."""

MAX_QUEUED_EVENTS = 1024
"""Events received ahead of the consumer; beyond, the socket is not read (TCP back-pressure)."""

MAX_REMEMBERED_ALERT_IDS = 10_000
"""Alert ids remembered to pass on an alert only once across resumes."""

RECONNECT_DELAYS_S = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0)
"""Wait before each reconnection attempt (the last one repeats)."""

RESUME_TIMEOUT_S = 60.0
"""Give up resuming after this long without a connection (the server's default ``resume_grace_s``)."""

OPEN_TIMEOUT_S = 10.0
"""Time for the TCP connection and the websocket handshake."""

READY_TIMEOUT_S = 30.0
"""Time for the server's answer to ``start``."""

RESUMABLE_CODES = frozenset({"internal", "shutting_down"})
"""Fatal error codes after which a resume (possibly on another gateway) can succeed."""

_SEQ_IN_MESSAGE = re.compile(r"next_seq=(\d+)")


def ingest_url(server: str) -> str:
    """``ws://HOST:PORT`` (or a full ``.../v1/ingest`` URL) as the ingest URL; ValueError otherwise."""
    parts = urlsplit(server)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise ValueError(f"server must be a ws:// or wss:// URL such as ws://127.0.0.1:8765, got {server!r}")
    path = parts.path if parts.path not in ("", "/") else "/v1/ingest"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


@dataclass(frozen=True)
class _Outcome:
    """How one connection ended: the session stopped, or it should be resumed (after ``reason``)."""

    stopped: Stopped | None = None
    reason: str = ""
    retry_now: bool = False


class IngestClient:
    """Where to stream (``ws://HOST:PORT``) with which token, and how long to keep resuming.

    ``max_resend_audio_s`` bounds the audio held for resending (seconds at the stream's rate).
    """

    def __init__(
        self,
        server: str | Sequence[str],
        *,
        token: str | None = None,
        resume_timeout_s: float = RESUME_TIMEOUT_S,
        max_resend_audio_s: float = MAX_RESEND_AUDIO_S,
        open_timeout_s: float = OPEN_TIMEOUT_S,
    ) -> None:
        servers = [server] if isinstance(server, str) else list(server)
        if not servers:
            raise ValueError("give at least one server")
        self.urls = [ingest_url(one) for one in servers]
        """Every gateway of a cluster may take the stream: a reconnection tries the next one."""
        self.url = self.urls[0]
        self.token = token
        self.resume_timeout_s = resume_timeout_s
        self.max_resend_audio_s = max_resend_audio_s
        self.open_timeout_s = open_timeout_s

    def stream(
        self,
        room_id: str,
        audio: AsyncIterable[bytes],
        *,
        sample_rate: int = SAMPLE_RATE,
        anchor_id: str | None = None,
        context: dict[str, Any] | None = None,
        speed: float | None = None,
        frame_ms: int = FRAME_MS,
    ) -> IngestStream:
        """Stream ``audio`` (PCM s16le mono at ``sample_rate``, any chunk sizes) into ``room_id``.

        ``context`` is the room context of ``start`` (``{"category": "jewelry", ...}``);
        ``speed`` paces the audio at that many times real time (``None``: no pacing).
        """
        return IngestStream(
            self,
            room_id,
            audio,
            sample_rate=sample_rate,
            anchor_id=anchor_id,
            context=context,
            speed=speed,
            frame_ms=frame_ms,
        )

    def push_file(
        self,
        room_id: str,
        source: str | Path,
        *,
        speed: float | None = 1.0,
        anchor_id: str | None = None,
        context: dict[str, Any] | None = None,
    ) -> IngestStream:
        """Stream a file or URL (decoded with PyAV to 16 kHz) at ``speed`` times real time (default live)."""
        return self.stream(
            room_id, file_audio(source), sample_rate=SAMPLE_RATE, anchor_id=anchor_id, context=context, speed=speed
        )


class IngestStream:
    """One room's stream; ``async with`` it, then ``async for event in stream`` (module docstring).

    After the iteration ends, :attr:`stopped` is the server's last ``stopped`` frame and
    :attr:`session_id` the session. Iteration raises a :class:`~monitor.client.errors.ClientError`
    when the stream cannot go on, or the source's error (e.g. an unreadable file) once what was
    read before it has been flushed.
    """

    def __init__(
        self,
        client: IngestClient,
        room_id: str,
        audio: AsyncIterable[bytes],
        *,
        sample_rate: int,
        anchor_id: str | None,
        context: dict[str, Any] | None,
        speed: float | None,
        frame_ms: int,
    ) -> None:
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        if speed is not None and speed < 0:
            raise ValueError(f"speed must be positive (or 0/None for no pacing), got {speed}")
        self.client = client
        self.room_id = room_id
        self.sample_rate = sample_rate
        self.anchor_id = anchor_id
        self.context = context
        self.speed = speed or None
        self.frame_bytes = max(2, sample_rate * frame_ms // 1000 * 2)
        self.session_id: str | None = None
        self.stopped: Stopped | None = None
        self._audio = audio
        self._ring = ResendBuffer(max(2, int(client.max_resend_audio_s * sample_rate) * 2))
        self._frames: asyncio.Queue[bytes] = asyncio.Queue(MAX_QUEUED_FRAMES)
        self._events: asyncio.Queue[Event | None] = asyncio.Queue(MAX_QUEUED_EVENTS)
        self._held_frame: bytes | None = None
        self._source_error: Exception | None = None
        self._error: Exception | None = None
        self._stop_sent = False
        self._seen_alerts: OrderedDict[str, None] = OrderedDict()
        self._last_transcript_end: float | None = None
        self._lost_at: float | None = None
        self._attempt = 0
        self._pump_task: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._finished = False

    # -- public ---------------------------------------------------------------------------
    async def __aenter__(self) -> IngestStream:
        self._pump_task = asyncio.create_task(self._pump(), name=f"audio:{self.room_id}")
        self._task = asyncio.create_task(self._run(), name=f"ingest:{self.room_id}")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for task in (self._task, self._pump_task):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def __aiter__(self) -> IngestStream:
        return self

    async def __anext__(self) -> Event:
        if self._task is None:
            raise RuntimeError("enter the stream first: `async with client.stream(...) as events:`")
        if self._finished:
            raise StopAsyncIteration
        event = await self._events.get()
        if event is None:
            self._finished = True
            if self._error is not None:
                raise self._error
            raise StopAsyncIteration
        return event

    def end_audio(self) -> None:
        """Take no more audio from the source: send what was taken, then ``stop`` (e.g. on Ctrl-C)."""
        if self._pump_task is not None:
            self._pump_task.cancel()

    # -- the source, cut into frames and paced ----------------------------------------------
    async def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        taken = 0
        started: float | None = None
        carry = b""
        try:
            async for chunk in self._audio:
                data = carry + bytes(chunk)
                whole = len(data) - len(data) % self.frame_bytes
                carry = data[whole:]
                for offset in range(0, whole, self.frame_bytes):
                    frame = data[offset : offset + self.frame_bytes]
                    taken += len(frame)
                    if self.speed is not None:
                        # a frame leaves once its last sample is due, like a live source's
                        started = loop.time() if started is None else started
                        delay = started + taken / 2 / self.sample_rate / self.speed - loop.time()
                        if delay > 0:
                            await asyncio.sleep(delay)
                    await self._frames.put(frame)
            tail = carry[: len(carry) - len(carry) % 2]
            if tail:
                await self._frames.put(tail)
        except Exception as exc:  # the source failed (unreadable file, dropped URL): flush what was sent
            self._source_error = exc
        finally:
            aclose = getattr(self._audio, "aclose", None)
            if aclose is not None:
                try:
                    await aclose()
                except Exception:
                    log.debug("closing the audio source failed", exc_info=True)

    async def _next_frame(self) -> bytes | None:
        """The next frame of the source, or None once it has ended (cancel-safe: nothing is lost)."""
        if self._held_frame is not None:
            frame, self._held_frame = self._held_frame, None
            return frame
        pump = self._pump_task
        assert pump is not None  # started by __aenter__
        getter = asyncio.ensure_future(self._frames.get())
        try:
            await asyncio.wait({getter, pump}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            if getter.done() and not getter.cancelled():
                self._held_frame = getter.result()
            else:
                getter.cancel()
            raise
        if getter.done():
            return getter.result()
        getter.cancel()  # the pump has ended: take what it left
        return self._frames.get_nowait() if not self._frames.empty() else None

    # -- connections --------------------------------------------------------------------------
    async def _run(self) -> None:
        try:
            await self._stream()
        except Exception as exc:
            self._error = exc
        if self._pump_task is not None:
            self._pump_task.cancel()
        await self._events.put(None)

    async def _stream(self) -> None:
        first = await self._next_frame()
        if first is None and self._source_error is not None:
            raise self._source_error  # nothing readable: the server is never contacted
        self._held_frame = first
        resume = False
        while True:
            try:
                ws = await self._open()
            except (ServerUnreachable, HandshakeRefused) as exc:
                unavailable = isinstance(exc, HandshakeRefused) and exc.status in (502, 503, 504)
                if not (unavailable or (resume and isinstance(exc, ServerUnreachable))):
                    raise
                await self._wait_to_retry(str(exc))
                continue
            async with ws:
                outcome = await self._connection(ws, resume)
            resume = True
            if outcome.stopped is not None:
                self._ring.discard_before(outcome.stopped.next_seq)
                if self._stop_sent:
                    break
                # the server ended the session before our stop (it shut down): go on in a new one
                outcome = _Outcome(reason=f"the server ended the session ({outcome.stopped.reason})")
            if not outcome.retry_now:
                await self._wait_to_retry(outcome.reason)
        if self._source_error is not None:
            raise self._source_error

    async def _open(self) -> ClientConnection:
        headers = {"Authorization": f"Bearer {self.client.token}"} if self.client.token else {}
        url = self.client.urls[self._attempt % len(self.client.urls)]
        try:
            return await connect(
                url,
                additional_headers=headers,
                open_timeout=self.client.open_timeout_s,
                max_size=2**22,
                compression=None,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            body = exc.response.body.decode("utf-8", "replace").strip() if exc.response.body else ""
            detail = body.splitlines()[0][:200] if body else exc.response.reason_phrase
            raise HandshakeRefused(status, f"{url}: the server answered HTTP {status} ({detail})") from exc
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            reason = (getattr(exc, "strerror", None) or str(exc) or type(exc).__name__).strip()
            raise ServerUnreachable(f"cannot connect to {url} ({reason})") from exc

    async def _wait_to_retry(self, reason: str) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._lost_at is None:
            self._lost_at = now
        if now - self._lost_at > self.client.resume_timeout_s:
            raise ResumeFailed(
                f"no connection to the server for {self.client.resume_timeout_s:g} s; gave up ({reason})"
            )
        delay = RECONNECT_DELAYS_S[min(self._attempt, len(RECONNECT_DELAYS_S) - 1)]
        self._attempt += 1
        await self._emit(Reconnecting(attempt=self._attempt, reason=reason, delay_s=delay))
        await asyncio.sleep(delay)

    async def _connection(self, ws: ClientConnection, resume: bool) -> _Outcome:
        """One connection: start, ready, audio and stop out, events in; how it ended."""
        seq = self._ring.start
        start: dict[str, Any] = {
            "type": "start",
            "room_id": self.room_id,
            "sample_rate": self.sample_rate,
            "encoding": "pcm_s16le",
            "channels": 1,
        }
        if self.anchor_id is not None:
            start["anchor_id"] = self.anchor_id
        if self.context is not None:
            start["context"] = self.context
        if resume:
            start["seq"] = seq
            if self.session_id is not None:
                start["session_id"] = self.session_id
        try:
            await ws.send(json.dumps(start, ensure_ascii=False))
            async with asyncio.timeout(READY_TIMEOUT_S):
                first = await self._next_server_frame(ws)
        except ConnectionClosed as exc:
            return _Outcome(reason=f"connection closed before ready ({_closed(exc)})")
        except TimeoutError:
            return _Outcome(reason=f"no answer to start within {READY_TIMEOUT_S:g} s")
        if isinstance(first, ServerError):
            return await self._after_fatal(first)
        if not isinstance(first, Ready):
            raise StreamRefused("protocol", f"the server answered start with {first.type!r}, not ready")
        self.session_id = first.session_id
        self._lost_at, self._attempt = None, 0
        await self._emit(first)
        resend = self._ring.read_from(seq, RESEND_FRAME_BYTES) if resume else []
        self._ring.discard_before(first.next_seq)
        receiver = asyncio.create_task(self._receive(ws))
        sender = asyncio.create_task(self._send(ws, resend))
        try:
            done, _ = await asyncio.wait({receiver, sender}, return_when=asyncio.FIRST_COMPLETED)
            if receiver not in done:
                # stop sent (the server flushes, then stopped), or the socket broke while sending
                error = sender.exception()
                if error is not None and not isinstance(error, ConnectionClosed):
                    raise error
                await asyncio.wait({receiver})
            return receiver.result()
        finally:
            for task in (sender, receiver):
                task.cancel()
            await asyncio.gather(sender, receiver, return_exceptions=True)

    async def _next_server_frame(self, ws: ClientConnection) -> ServerEvent:
        while True:
            message = await ws.recv()
            try:
                return parse_server_frame(message)
            except BadServerFrame as exc:
                log.warning("ignoring a server frame: %s", exc)

    async def _send(self, ws: ClientConnection, resend: list[bytes]) -> None:
        for again in resend:
            await ws.send(again)
        while True:
            frame = await self._next_frame()
            if frame is None:
                break
            self._ring.append(frame)  # held before sending: a send cut off is sent again on resume
            await ws.send(frame)
        await ws.send(json.dumps({"type": "stop"}))
        self._stop_sent = True

    async def _receive(self, ws: ClientConnection) -> _Outcome:
        fatal: ServerError | None = None
        try:
            while True:
                event = await self._next_server_frame(ws)
                if isinstance(event, ServerError) and event.fatal:
                    fatal = event  # the server closes next; decided below
                    continue
                if self._is_repeat(event):
                    continue
                await self._emit(event)
                if isinstance(event, Stopped):
                    self.stopped = event
                    return _Outcome(stopped=event)
        except ConnectionClosed as exc:
            if fatal is not None:
                return await self._after_fatal(fatal)
            return _Outcome(reason=f"connection lost ({_closed(exc)})")

    async def _after_fatal(self, error: ServerError) -> _Outcome:
        if error.code == "seq_ahead":
            found = _SEQ_IN_MESSAGE.search(error.message)
            if found is None:
                raise StreamRefused(error.code, f"the server refused the resume: {error.message}")
            server_seq = int(found.group(1))
            gap = self._ring.fill_gap(server_seq)
            await self._emit(AudioGap(from_seq=server_seq, to_seq=server_seq + gap, seconds=gap / 2 / self.sample_rate))
            return _Outcome(reason="resuming from the server's next_seq", retry_now=True)
        if error.code in RESUMABLE_CODES:
            return _Outcome(reason=f"{error.code}: {error.message}")
        raise StreamRefused(error.code, f"the server refused the stream: {error.code}: {error.message}")

    def _is_repeat(self, event: ServerEvent) -> bool:
        """Whether a resumed connection delivers ``event`` a second time."""
        if isinstance(event, Alert):
            if event.alert_id in self._seen_alerts:
                return True
            self._seen_alerts[event.alert_id] = None
            if len(self._seen_alerts) > MAX_REMEMBERED_ALERT_IDS:
                self._seen_alerts.popitem(last=False)
        elif isinstance(event, Transcript):
            if self._last_transcript_end is not None and event.end <= self._last_transcript_end:
                return True
            self._last_transcript_end = event.end
        return False

    async def _emit(self, event: Event) -> None:
        await self._events.put(event)


def _closed(exc: ConnectionClosed) -> str:
    frame = exc.rcvd or exc.sent
    if frame is None:
        return "no close frame"
    return f"{frame.code}{' ' + frame.reason if frame.reason else ''}"
