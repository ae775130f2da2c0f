"""Reading a room's audio from a URL the server pulls itself, on a thread of its own.

The blocking half of pull mode (:mod:`monitor.server.pull` is the event-loop half). A
:class:`SourceReader` opens the URL with PyAV (FFmpeg: RTMP, HTTP-FLV, HLS, a plain HTTP
media file), decodes the first audio stream to mono 16 kHz 16-bit PCM and hands it to a
bounded :class:`PcmBuffer`; it reconnects after a drop following a
:class:`ReconnectPolicy` and reports its state through a callback::

    buffer = PcmBuffer(max_bytes, on_ready=wake_the_loop)
    reader = SourceReader(url, buffer, policy, report=on_state, timeout_s=10)
    threading.Thread(target=reader.run, daemon=True).start()
    ...
    reader.stop()                     # seen between packets, or after at most timeout_s in a read

A live source (no known duration: RTMP, live HLS, live HTTP-FLV) cannot be slowed down,
so when the buffer is full its oldest audio is dropped and counted
(:attr:`PcmBuffer.take` reports how much); a finite source (a file, a VOD playlist) is
read at real time (paced by stream time) and simply waits while the buffer is full.

The plain parts (:class:`ReconnectPolicy`, :func:`redact_url`, :func:`describe_error`,
:class:`PcmBuffer`) need no network and are tested with exact inputs.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

import av
import numpy as np

from monitor.asr.audio import SAMPLE_RATE
from monitor.server.client import float_to_pcm16

log = logging.getLogger(__name__)

ALLOWED_SCHEMES = frozenset({"rtmp", "rtmps", "http", "https"})
"""URL schemes a pulled room may use (never ``file:`` or FFmpeg's other protocols)."""

PROTOCOL_WHITELIST = "http,https,tcp,tls,rtmp,rtmps,crypto,httpproxy"
"""FFmpeg protocols the reader may open, nested ones included (an HLS playlist naming a local file fails)."""

ANALYZE_DURATION_US = 1_000_000
"""How long FFmpeg probes a stream before decoding (microseconds); its default of 5 s delays every connect."""

PACE_LEAD_S = 0.5
"""A finite source (file, VOD) is read at most this far ahead of real time."""

SECRET_QUERY_KEY = re.compile(r"token|key|secret|sign|auth|pass|session|credential", re.IGNORECASE)
"""Query parameters whose value :func:`redact_url` hides (``txSecret``, ``auth_key``, ``sign``...)."""

REDACTED = "[redacted]"


class SourceState(StrEnum):
    """Where a pulled source is; the first four are what ``GET /v1/rooms`` shows."""

    CONNECTING = "connecting"
    STREAMING = "streaming"
    RETRYING = "retrying"
    FAILED = "failed"
    ENDED = "ended"  # a finite source was read to its end
    STOPPED = "stopped"  # stop() was called


@dataclass
class ReconnectPolicy:
    """Capped exponential back-off with a limit on consecutive failures.

    Call :meth:`failed` after each failed connect or dropped stream: it answers the seconds
    to wait before the next attempt (``initial_delay_s``, then times ``multiplier``, at most
    ``max_delay_s``), or ``None`` once ``max_failures`` failures in a row have happened.
    Call :meth:`streamed` when audio arrives: the source works, the count starts over.
    """

    initial_delay_s: float
    max_delay_s: float
    max_failures: int
    multiplier: float = 2.0
    failures: int = 0

    def failed(self) -> float | None:
        self.failures += 1
        if self.failures >= self.max_failures:
            return None
        return float(min(self.max_delay_s, self.initial_delay_s * self.multiplier ** (self.failures - 1)))

    def streamed(self) -> None:
        self.failures = 0


def redact_url(url: str) -> str:
    """``url`` without its secrets, for logs and API answers: the password of ``user:pass@``
    and the values of query parameters whose names look secret (:data:`SECRET_QUERY_KEY`)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        user = parts.username or ""
        shown_host = f"[{host}]" if ":" in host else host
        netloc = f"{user}:{REDACTED}@{shown_host}" if parts.password is not None else f"{user}@{shown_host}"
        if port is not None:
            netloc += f":{port}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, REDACTED if SECRET_QUERY_KEY.search(k) else v) for k, v in pairs], safe="[]")
    return urlunsplit(SplitResult(parts.scheme, netloc, parts.path, query, ""))


class SourceError(Exception):
    """A connect or read that failed; ``permanent`` when trying again cannot help (a 4xx answer,
    data that is not audio) while the source has never streamed."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


def describe_error(exc: BaseException) -> SourceError:
    """One line saying what went wrong with the source, and whether retrying can help."""
    reason = str(getattr(exc, "strerror", None) or exc).strip().splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, av.error.HTTPClientError):
        # 4xx but 408/429 means the URL is wrong or not ours; 5xx (HTTPServerError) is retried
        retryable = isinstance(exc, av.error.HTTPTooManyRequestsError) or "408" in reason
        return SourceError(reason, permanent=not retryable)
    if isinstance(exc, av.error.InvalidDataError | av.error.DemuxerNotFoundError | av.error.DecoderNotFoundError):
        return SourceError(f"not a decodable audio stream ({reason})", permanent=True)
    if isinstance(exc, av.error.ProtocolNotFoundError):
        return SourceError(f"protocol not supported ({reason})", permanent=True)
    if isinstance(exc, TimeoutError | av.error.TimeoutError):
        return SourceError("no data before the timeout", permanent=False)
    return SourceError(reason, permanent=False)


class PcmBuffer:
    """Bounded hand-off of PCM from the reader thread to the event loop (``max_bytes``).

    :meth:`put` (reader thread) either waits for room (``wait=True``: a finite source) or
    drops the oldest chunks (a live source); :meth:`take` (event loop) returns the bytes
    dropped since the last take (they precede the returned audio) and up to ``max_take``
    bytes of audio. ``on_ready`` is called (from the reader thread) after each put.
    """

    def __init__(self, max_bytes: int, on_ready: Callable[[], None]) -> None:
        self.max_bytes = max_bytes
        self._on_ready = on_ready
        self._chunks: deque[bytes] = deque()
        self._held = 0
        self._dropped = 0
        self._room = threading.Condition()

    @property
    def held_bytes(self) -> int:
        return self._held

    def put(self, pcm: bytes, *, wait: bool, stop: threading.Event) -> None:
        with self._room:
            if wait:
                while self._held + len(pcm) > self.max_bytes and self._chunks and not stop.is_set():
                    self._room.wait(0.5)
            else:
                while self._held + len(pcm) > self.max_bytes and self._chunks:
                    dropped = self._chunks.popleft()
                    self._held -= len(dropped)
                    self._dropped += len(dropped)
            self._chunks.append(pcm)
            self._held += len(pcm)
        self._on_ready()

    def take(self, max_take: int) -> tuple[int, bytes]:
        """``(bytes dropped before this audio, audio)``; the audio is empty when nothing is held."""
        with self._room:
            dropped, self._dropped = self._dropped, 0
            parts: list[bytes] = []
            taken = 0
            while self._chunks and (not parts or taken + len(self._chunks[0]) <= max_take):
                chunk = self._chunks.popleft()
                parts.append(chunk)
                taken += len(chunk)
            self._held -= taken
            self._room.notify_all()
        return dropped, b"".join(parts)


Report = Callable[[SourceState, "str | None"], None]
"""``report(state, last_error)``, called from the reader thread on every state change."""


class SourceReader:
    """Pulls one URL until it ends, fails for good or :meth:`stop` is called (module docstring).

    :meth:`run` is the thread's target; ``samples`` counts the 16 kHz samples handed to
    the buffer over every connection (the room's stream time, gaps not invented).
    """

    def __init__(
        self,
        url: str,
        buffer: PcmBuffer,
        policy: ReconnectPolicy,
        *,
        report: Report,
        timeout_s: float,
    ) -> None:
        self.url = url
        self.shown_url = redact_url(url)
        self.buffer = buffer
        self.policy = policy
        self.report = report
        self.timeout_s = timeout_s
        self.samples = 0
        self.connects = 0
        self.log_extra: dict[str, str] = {}  # room_id, session_id: named in this thread's log records
        self._stop = threading.Event()
        self._ever_streamed = False

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> None:
        """Connect, stream, reconnect with back-off; the last report is ended, failed or stopped."""
        last_error: str | None = None
        try:
            while not self._stop.is_set():
                self.report(SourceState.CONNECTING, last_error)
                try:
                    if self._stream_once():
                        self.report(SourceState.ENDED, None)
                        return
                    last_error = "the stream ended (the source stopped sending)"
                except SourceError as exc:
                    last_error = str(exc)
                    if exc.permanent and not self._ever_streamed:
                        log.warning("pulled source %s failed: %s", self.shown_url, last_error, extra=self.log_extra)
                        self.report(SourceState.FAILED, last_error)
                        return
                if self._stop.is_set():
                    break
                delay = self.policy.failed()
                if delay is None:
                    why = f"{last_error} ({self.policy.failures} failures in a row)"
                    log.warning("pulled source %s failed: %s", self.shown_url, why, extra=self.log_extra)
                    self.report(SourceState.FAILED, why)
                    return
                log.info("pulled source %s: %s; retrying in %.1f s", self.shown_url, last_error, delay,
                         extra=self.log_extra)
                self.report(SourceState.RETRYING, last_error)
                self._stop.wait(delay)
        except Exception as exc:  # the reader never takes down the server; the room reports it
            log.exception("pulled source %s: reader failed", self.shown_url, extra=self.log_extra)
            self.report(SourceState.FAILED, f"internal error: {exc!r}"[:200])
            return
        self.report(SourceState.STOPPED, None)

    def _stream_once(self) -> bool:
        """One connection: True when a finite source was read to its end, False when a live one
        ended (or stop was called); raises :class:`SourceError` for a failed connect or read."""
        self.connects += 1
        try:
            container = av.open(
                self.url,
                mode="r",
                timeout=(self.timeout_s, self.timeout_s),
                options={"protocol_whitelist": PROTOCOL_WHITELIST, "analyzeduration": str(ANALYZE_DURATION_US)},
            )
        except (av.error.FFmpegError, OSError) as exc:
            raise describe_error(exc) from exc
        with container:
            if not container.streams.audio:
                raise SourceError("no audio stream", permanent=True)
            stream = container.streams.audio[0]
            finite = container.duration is not None and container.duration > 0
            # a finite source reopened after a failure starts over: skip what the room already has
            skip = self.samples if finite else 0
            resampler = av.AudioResampler(format="fltp", layout=None, rate=SAMPLE_RATE)
            began = time.monotonic()
            read_s = 0.0
            streaming = False
            try:
                for packet in container.demux(stream):
                    if self._stop.is_set():
                        return False
                    for frame in packet.decode():
                        frame.pts = None  # the resampler counts samples itself (odd timestamps after a drop)
                        for mono in _mono(resampler.resample(frame)):
                            if skip:
                                cut = min(skip, mono.size)
                                skip -= cut
                                mono = mono[cut:]
                                if not mono.size:
                                    continue
                            if not streaming:
                                streaming = True
                                self._ever_streamed = True
                                self.policy.streamed()
                                self.report(SourceState.STREAMING, None)
                            self.samples += mono.size
                            self.buffer.put(float_to_pcm16(mono), wait=finite, stop=self._stop)
                            if finite:
                                read_s += mono.size / SAMPLE_RATE
                                ahead_s = read_s - (time.monotonic() - began) - PACE_LEAD_S
                                if ahead_s > 0 and self._stop.wait(ahead_s):
                                    return False
                for mono in _mono(resampler.resample(None)):
                    if mono.size > skip:
                        self.samples += mono.size - skip
                        self.buffer.put(float_to_pcm16(mono[skip:]), wait=finite, stop=self._stop)
                    skip = max(0, skip - mono.size)
            except (av.error.FFmpegError, OSError) as exc:
                raise describe_error(exc) from exc
        if finite and not self.samples:
            raise SourceError("the source holds no audio samples", permanent=True)
        return finite


def _mono(frames: list[av.AudioFrame]) -> list[np.ndarray]:
    """Planar float frames averaged to mono (FFmpeg's downmix can clip identical channels)."""
    out = []
    for frame in frames:
        planes = frame.to_ndarray()
        out.append((planes[0] if planes.shape[0] == 1 else planes.mean(axis=0)).astype(np.float32, copy=False))
    return out
