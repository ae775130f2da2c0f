"""Per-socket protocol handling: ``/v1/ingest`` (:class:`RoomConnection`) and ``/v1/alerts``.

The connection boundary: it parses client frames, enforces limits (frame size, message
rate, audio rate, pending backlog), turns :class:`~monitor.errors.ProtocolError` into
``error`` frames and close codes, and is the only place that catches broadly, so no
input ever takes down another room or the server. The socket is a
:class:`~monitor.server.sockets.MessageSocket`; no web framework is seen here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from monitor.errors import ProtocolError
from monitor.server.auth import Grant
from monitor.server.hub import END_OF_ALERTS, Subscriber
from monitor.server.limits import TokenBucket
from monitor.server.protocol import (
    CloseCode,
    ErrorCode,
    StartFrame,
    close_code_for,
    encode,
    error_frame,
    fatal,
    parse_control,
    parse_start,
    recoverable,
)
from monitor.server.session import Resources, RoomSession
from monitor.server.sockets import MessageSocket, SocketClosed

log = logging.getLogger(__name__)

THROTTLE_NOTICE_INTERVAL_S = 10.0
"""At most one ``throttled``/``flood`` notice per connection per this many seconds."""


class RoomConnection:
    """One ``/v1/ingest`` socket: start handshake, audio phase, stop; see docs/PROTOCOL.md."""

    def __init__(
        self,
        ws: MessageSocket,
        grant: Grant,
        resources: Resources,
        open_session: Callable[[StartFrame, RoomConnection], Awaitable[RoomSession]],
    ) -> None:
        self.ws = ws
        self.grant = grant
        self.resources = resources
        self._open_session = open_session
        self.session: RoomSession | None = None
        self._skip_bytes = 0  # resend overlap to discard after a resume
        settings = resources.settings
        self._message_rate = TokenBucket(settings.max_messages_per_s, settings.max_messages_per_s)
        self._audio_rate: TokenBucket | None = None
        self._last_notice: dict[str, float] = {}
        self._sender: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[bool] | None = None
        self._superseded = False
        self.resumed = False  # set by the server when this connection continues a session

    # -- entry point ---------------------------------------------------------------------
    async def run(self) -> None:
        """Serve the socket until stop, a fatal error, the client leaving, or server shutdown."""
        metrics = self.resources.metrics
        metrics.ingest_connections.inc()
        try:
            await self._run()
        except ProtocolError as exc:
            await self._fail(exc)
        except SocketClosed:
            pass
        except Exception:
            log.exception("ingest connection failed")
            await self._fail(fatal(ErrorCode.INTERNAL, "internal server error; the session can be resumed"))
        finally:
            for task in (self._sender, self._reader):
                if task is not None:
                    task.cancel()
            if self.session is not None:
                self.session.detach(self)
            metrics.ingest_connections.dec()

    async def _run(self) -> None:
        settings = self.resources.settings
        try:
            first = await asyncio.wait_for(self.ws.recv(), settings.start_timeout_s)
        except TimeoutError:
            raise fatal(
                ErrorCode.START_TIMEOUT, f"no start frame within {settings.start_timeout_s:g} s of connecting"
            ) from None
        start = parse_start(first)
        if not self.grant.may_see(start.room_id):
            raise fatal(ErrorCode.FORBIDDEN_ROOM, f"token is not scoped to room {start.room_id!r}")
        start, ignored = self._trusted_start(start)
        if start.seq is not None and start.seq % 2:
            raise fatal(
                ErrorCode.BAD_START,
                f"start frame: seq={start.seq} is odd; seq counts bytes of whole 16-bit samples",
            )
        session = await self._open_session(start, self)
        self.session = session
        for notice in ignored:
            self._send_error(notice)
        self._skip_bytes = max(
            0, session.next_seq - (start.seq if start.seq is not None else session.next_seq)
        )
        self._audio_rate = TokenBucket(settings.max_ingest_speed, settings.ingest_burst_s)
        await self.ws.send(
            encode(
                {
                    "type": "ready",
                    "session_id": session.session_id,
                    "next_seq": session.next_seq,
                    "stream_time": round(session.stream_time_s, 3),
                    "resumed": self.resumed,
                }
            )
        )
        self._sender = asyncio.create_task(self._send_outbox(), name=f"outbox:{start.room_id}")
        reader = self._reader = asyncio.create_task(self._read_audio(), name=f"reader:{start.room_id}")
        finished = asyncio.create_task(session.finished.wait())
        # a socket can end while the reader waits for capacity: watch the socket itself too
        closed = asyncio.create_task(self.ws.wait_closed())
        try:
            done, _ = await asyncio.wait(
                {reader, finished, self._sender, closed}, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            finished.cancel()
            closed.cancel()
        if self._superseded:
            return  # supersede() is closing this socket
        if closed in done and reader not in done:
            return  # the socket is gone (run() cancels the reader and detaches: grace begins)
        if reader in done:
            if not reader.result():  # raises ProtocolError / SocketClosed from the audio phase
                return  # the socket ended without stop (any close code): run() detaches, grace begins
            # the client sent stop: the session is finishing; the sender ends after "stopped"
            await self._sender
            await self.ws.close(CloseCode.NORMAL, "stopped")
            return
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        # the session finished without a stop from this client (server shutdown): send the rest,
        # up to "stopped" (raises SocketClosed if the socket broke meanwhile), then go away
        await self._sender
        await self.ws.close(CloseCode.GOING_AWAY, "server shutting down")

    # -- audio phase --------------------------------------------------------------------
    def _trusted_start(self, start: StartFrame) -> tuple[StartFrame, list[ProtocolError]]:
        """An anchor token never sets what is trusted about its room: its ``anchor_id`` is the
        token's own and its ``context.certified`` is dropped, each with ``ignored_field``."""
        if self.grant.role != "anchor":
            return start, []
        ignored: list[ProtocolError] = []
        own = self.grant.anchor_id
        if start.anchor_id is not None and start.anchor_id != own:
            ignored.append(
                recoverable(
                    ErrorCode.IGNORED_FIELD,
                    f"start frame: anchor_id {start.anchor_id!r} ignored; an anchor token streams as its own "
                    f"anchor ({own!r})",
                )
            )
        context = start.context
        if context is not None and context.certified:
            ignored.append(
                recoverable(
                    ErrorCode.IGNORED_FIELD,
                    "start frame: context.certified ignored; certified attributes come from the platform's "
                    "ingest token, not the anchor",
                )
            )
            context = context.model_copy(update={"certified": []})
        return start.model_copy(update={"anchor_id": own, "context": context}), ignored

    async def _read_audio(self) -> bool:
        """Read the audio phase; True after ``stop``, False when the socket ended without it."""
        session = self.session
        assert session is not None  # set before reading starts
        async for message in self.ws:
            await self._pace_messages()
            if isinstance(message, str):
                try:
                    parse_control(message)
                except ProtocolError as exc:
                    self._send_error(exc)
                    continue
                await session.finish("stop")
                return True
            await self._take_audio(session, message)
        return False

    async def _take_audio(self, session: RoomSession, frame: bytes) -> None:
        settings = self.resources.settings
        metrics = self.resources.metrics
        if len(frame) > settings.max_frame_bytes:
            metrics.frames_dropped.labels(reason="too_large").inc()
            raise fatal(
                ErrorCode.FRAME_TOO_LARGE,
                f"binary frame of {len(frame)} bytes is over max_frame_bytes={settings.max_frame_bytes}",
            )
        if len(frame) % 2:
            metrics.frames_dropped.labels(reason="odd_length").inc()
            self._send_error(
                recoverable(
                    ErrorCode.ODD_FRAME,
                    f"binary frame of {len(frame)} bytes at seq {session.next_seq} is not whole 16-bit "
                    "samples; "
                    "frame dropped, seq not advanced",
                )
            )
            return
        if self._skip_bytes:
            overlap = min(self._skip_bytes, len(frame))
            self._skip_bytes -= overlap
            frame = frame[overlap:]
            metrics.frames_dropped.labels(reason="resume_overlap").inc()
            if not frame:
                return
        assert self._audio_rate is not None  # set before reading starts
        wait_s = self._audio_rate.delay(len(frame) / 2 / session.sample_rate)
        if wait_s > 0:
            metrics.frames_throttled.labels(reason="rate").inc()
            self._notice(
                ErrorCode.THROTTLED,
                f"audio arrives faster than {settings.max_ingest_speed:g}x real time; reading is slowed",
            )
            await asyncio.sleep(wait_s)
        if not session.capacity.is_set():
            metrics.frames_throttled.labels(reason="backlog").inc()
            self._notice(
                ErrorCode.THROTTLED,
                f"over {settings.max_pending_audio_s:g} s of speech waits for "
                "transcription; reading paused until it drains",
            )
            await session.capacity.wait()
        if self._superseded:
            return  # a newer connection owns the stream now
        session.feed_audio(frame)

    async def _pace_messages(self) -> None:
        wait_s = self._message_rate.delay(1)
        if wait_s > 0:
            self.resources.metrics.frames_throttled.labels(reason="flood").inc()
            self._notice(
                ErrorCode.FLOOD,
                f"more than {self.resources.settings.max_messages_per_s} messages "
                "per second; reading is slowed (send larger frames)",
            )
            await asyncio.sleep(wait_s)

    # -- frames out -----------------------------------------------------------------------
    async def _send_outbox(self) -> None:
        """Send the session's queued frames in order; return after ``stopped``."""
        session = self.session
        assert session is not None
        while True:
            if not session.outbox:
                session.outbox_ready.clear()
                await session.outbox_ready.wait()
                continue
            frame = session.outbox[0]
            await self.ws.send(encode(frame))
            if session.outbox and session.outbox[0] is frame:
                session.outbox.popleft()
            if frame["type"] == "stopped":
                return

    def _send_error(self, error: ProtocolError) -> None:
        self.resources.metrics.protocol_errors.labels(code=error.code).inc()
        if self.session is not None:
            self.session.push(error_frame(error))

    def _notice(self, code: ErrorCode, message: str) -> None:
        now = time.monotonic()
        if now - self._last_notice.get(code.value, -1e9) >= THROTTLE_NOTICE_INTERVAL_S:
            self._last_notice[code.value] = now
            self._send_error(recoverable(code, message))

    async def _fail(self, error: ProtocolError) -> None:
        """Send a fatal error directly (ahead of the outbox) and close with its code."""
        self.resources.metrics.protocol_errors.labels(code=error.code).inc()
        code = close_code_for(error)
        with contextlib.suppress(SocketClosed):
            await self.ws.send(encode(error_frame(error)))
        # close reasons are limited to 123 bytes
        reason = f"{error.code}: {error}".encode()[:123].decode("utf-8", "ignore")
        with contextlib.suppress(SocketClosed):
            await self.ws.close(code, reason)

    def supersede(self) -> None:
        """A resumed connection took this room over: stop reading and sending, close this socket."""
        self._superseded = True
        for task in (self._sender, self._reader):
            if task is not None:
                task.cancel()
        error = fatal(ErrorCode.SUPERSEDED, "a newer connection resumed this room")
        asyncio.get_running_loop().create_task(self._fail(error))


async def serve_subscriber(
    ws: MessageSocket,
    subscriber: Subscriber,
    on_exit: Callable[[], Any],
    on_message: Callable[[str | bytes], Awaitable[None]] | None = None,
) -> None:
    """Push the subscriber's alerts (and the events it asked for) until it leaves, is cut off as
    too slow, or the server stops. Client messages go to ``on_message`` one at a time (ignored
    when None); its answers travel through the subscriber's queue, so one task writes the socket."""

    async def pump() -> None:
        while True:
            item = await subscriber.next_alert()
            if item is END_OF_ALERTS:
                await ws.close(CloseCode.GOING_AWAY, "server shutting down")
                return
            # alerts are held in wire form (no "type"); events and replies carry their own
            await ws.send(encode(item if "type" in item else {"type": "alert", **item}))

    async def read_input() -> None:
        async for message in ws:  # reading also keeps pings and close frames flowing
            if on_message is None:
                continue
            try:
                await on_message(message)
            except Exception:  # one bad message never ends the subscriber's socket
                log.exception("a message on /v1/alerts failed")
                subscriber.offer(
                    error_frame(recoverable(ErrorCode.INTERNAL, "this message could not be handled; send it again"))
                )

    tasks = {
        asyncio.create_task(pump()),
        asyncio.create_task(read_input()),
        asyncio.create_task(subscriber.cut.wait()),
    }
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        on_exit()
    if subscriber.cut.is_set():
        with contextlib.suppress(SocketClosed):
            await ws.close(CloseCode.TRY_AGAIN_LATER, (subscriber.cut_reason or "cut off")[:123])
