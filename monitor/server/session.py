"""One room's stream, from PCM bytes to sent alerts; survives a dropped socket until resumed.

A :class:`RoomSession` owns everything per room: the resampler, the VAD segmenter, the
evidence ring buffer, the compliance session (repetition state), the dedup memory, the
queue of utterances waiting for a worker and the outbox of frames for the anchor. The
socket that feeds it (a :class:`~monitor.server.connection.RoomConnection`) may come
and go: a resumed connection picks up the same session, so stream time continues and
no alert is produced twice. Shared, read-only resources come in :class:`Resources`.

Stream time is counted from the samples received, never the wall clock: the byte
offset ``seq`` of the room's stream maps to ``seq / 2 / sample_rate`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from monitor.alerts import Alert
from monitor.asr.audio import StreamResampler, pcm16le_to_float32
from monitor.asr.vad import SpeechSegment, StreamingSegmenter
from monitor.config import Settings
from monitor.pipeline import ComplianceSession, Detectors
from monitor.room import RoomContext, Utterance
from monitor.server.buffers import RING_BUFFER_S, ArrivalLog, AudioRing
from monitor.server.evidence import EvidenceWriter
from monitor.server.hub import AlertHub
from monitor.server.metrics import ServerMetrics
from monitor.server.scheduler import FairScheduler
from monitor.taxonomy import Severity

if TYPE_CHECKING:
    from monitor.asr.transcriber import Transcriber, Transcript

log = logging.getLogger(__name__)

MAX_OUTBOX_FRAMES = 512
"""Frames held for the anchor's socket (while it is slow or reconnecting); oldest transcripts go first."""

MAX_SESSION_TRANSCRIPT_UTTERANCES = 50_000
"""Utterances kept for the session's final transcript record (about 50 hours of talk)."""

EVIDENCE_CONTEXT_S = 1.0
"""Audio kept on each side of an alert's utterance in its evidence clip (the tail as far as received)."""

MAX_DEDUP_RULES = 512
"""Rules remembered per room for the dedup window."""


@dataclass(frozen=True)
class Resources:
    """What every room shares: loaded once per server, read-only (or internally locked)."""

    settings: Settings
    detectors: Detectors
    transcriber: Transcriber
    evidence: EvidenceWriter
    hub: AlertHub
    metrics: ServerMetrics
    scheduler: FairScheduler


@dataclass
class UtteranceResult:
    """What a worker made of one utterance."""

    segment: SpeechSegment
    transcript: Transcript | None
    alerts: list[Alert] = field(default_factory=list)
    deduplicated: list[Alert] = field(default_factory=list)
    wall_s: float = 0.0


class RoomSession:
    """The per-room pipeline state; see the module docstring. Methods run on the event loop
    except :meth:`_process`, which a worker thread runs for one utterance at a time."""

    def __init__(
        self,
        resources: Resources,
        *,
        room_id: str,
        anchor_id: str | None,
        sample_rate: int,
        context: RoomContext | None,
        base_seq: int = 0,
        opened_by: str = "",
    ) -> None:
        settings = resources.settings
        self.resources = resources
        self.session_id = uuid.uuid4().hex
        self.opened_by = opened_by  # fingerprint of the token that opened it: it may resume without session_id
        self.room_id = room_id
        self.anchor_id = anchor_id
        self.sample_rate = sample_rate
        self.context = context or RoomContext()
        self.base_seq = base_seq
        self.accepted_bytes = 0
        origin_s = base_seq / 2 / sample_rate
        self.started_at = datetime.now(UTC)
        self._resampler = StreamResampler(sample_rate)
        self._segmenter = StreamingSegmenter(
            start_offset_s=origin_s,
            min_silence_ms=settings.stream_min_silence_ms,
            max_utterance_s=settings.stream_max_utterance_s,
        )
        self._ring = AudioRing(origin_s=origin_s, capacity_s=RING_BUFFER_S)
        self._arrivals = ArrivalLog()
        self._compliance = ComplianceSession(
            resources.detectors,
            room_id=room_id,
            anchor_id=anchor_id,
            context=self.context,
            asr_version=resources.transcriber.model_version,
        )
        self._dedup: dict[str, tuple[float, int]] = {}
        self._pending: deque[SpeechSegment] = deque()
        self.pending_audio_s = 0.0
        self.capacity = asyncio.Event()  # set while pending speech is under the bound
        self.capacity.set()
        self._idle = asyncio.Event()  # set while nothing is pending or in flight
        self._idle.set()
        self.outbox: deque[dict[str, Any]] = deque()
        self.outbox_ready = asyncio.Event()
        self.transcript: list[dict[str, Any]] = []
        self.alerts_sent = 0
        self.connection: Any = None  # the attached RoomConnection, if any
        self._grace_timer: asyncio.TimerHandle | None = None
        self._finish_task: asyncio.Task[None] | None = None
        self.finished = asyncio.Event()
        self.on_finished: Callable[[RoomSession], None] | None = None
        self.on_finishing: Callable[[asyncio.Task[None]], None] | None = None  # the server tracks it for drain

    # -- stream position ------------------------------------------------------------
    @property
    def next_seq(self) -> int:
        """Byte offset, in the room's PCM stream, of the next byte the server expects."""
        return self.base_seq + self.accepted_bytes

    @property
    def stream_time_s(self) -> float:
        """Stream seconds received so far (from samples, not the clock)."""
        return self.next_seq / 2 / self.sample_rate

    @property
    def finishing(self) -> bool:
        return self._finish_task is not None

    @property
    def connected(self) -> bool:
        """Whether a socket streams into the room now (else it is in its grace period or finishing)."""
        return self.connection is not None

    # -- audio in -------------------------------------------------------------------
    def feed_audio(self, pcm: bytes) -> None:
        """Accept whole little-endian 16-bit samples (even length); queue utterances that ended."""
        samples = pcm16le_to_float32(pcm)
        self.accepted_bytes += len(pcm)
        self.resources.metrics.add_audio(len(pcm) / 2 / self.sample_rate)
        self._take_16k(self._resampler.feed(samples))

    def _take_16k(self, samples_16k: Any) -> None:
        self._ring.append(samples_16k)
        self._arrivals.mark(self._ring.end_s)
        for segment in self._segmenter.feed(samples_16k):
            self._enqueue(segment)

    def _enqueue(self, segment: SpeechSegment) -> None:
        settings = self.resources.settings
        self._pending.append(segment)
        self.pending_audio_s += segment.duration
        self.resources.metrics.pending_audio_seconds.inc(segment.duration)
        self._idle.clear()
        if self.pending_audio_s >= settings.max_pending_audio_s:
            self.capacity.clear()
        self.resources.scheduler.notify(self)

    # -- scheduler interface (event loop) ----------------------------------------------
    def has_work(self) -> bool:
        return bool(self._pending)

    def take_job(self) -> Callable[[], UtteranceResult]:
        segment = self._pending.popleft()
        self.pending_audio_s = max(0.0, self.pending_audio_s - segment.duration)
        self.resources.metrics.pending_audio_seconds.dec(segment.duration)
        if self.pending_audio_s < self.resources.settings.max_pending_audio_s:
            self.capacity.set()
        return partial(self._process, segment)

    def job_done(self, future: Future[UtteranceResult]) -> None:
        try:
            result = future.result()
        except Exception:
            log.exception("room %s: an utterance failed to process; the room goes on", self.room_id)
            self.push(
                {
                    "type": "error",
                    "code": "internal",
                    "fatal": False,
                    "message": "one utterance could not be processed; the stream goes on",
                }
            )
        else:
            self._deliver(result)
        if not self._pending:
            self._idle.set()

    # -- worker thread ----------------------------------------------------------------
    def _process(self, segment: SpeechSegment) -> UtteranceResult:
        """Transcribe, detect, dedup and archive one utterance (runs on a worker thread)."""
        began = time.perf_counter()
        res = self.resources
        transcript = res.transcriber.transcribe(segment, room_category=self.context.category)
        result = UtteranceResult(segment=segment, transcript=transcript)
        if transcript is not None and transcript.text.strip():
            utterance = Utterance(transcript.text, transcript.start, transcript.end)
            for alert in self._compliance.feed(utterance):
                (result.alerts if self._first_in_window(alert) else result.deduplicated).append(alert)
            evidence_text = transcript.text
            if transcript.heard is not None:  # rescoring rewrote a term: keep what was first written
                evidence_text += f"\nfirst pass: {transcript.heard}"
            for alert in result.alerts:
                self._archive(alert, segment, evidence_text)
        result.wall_s = time.perf_counter() - began
        return result

    def _first_in_window(self, alert: Alert) -> bool:
        """False when the same rule already reminded this room within the dedup window (unless now worse)."""
        when = alert.start if alert.start is not None else 0.0
        rank = Severity(alert.severity).rank
        previous = self._dedup.get(alert.rule_id)
        window = self.resources.settings.dedup_window_s
        if previous is not None and when - previous[0] < window and rank <= previous[1]:
            return False
        self._dedup[alert.rule_id] = (when, rank)
        if len(self._dedup) > MAX_DEDUP_RULES:
            oldest = min(self._dedup, key=lambda rule: self._dedup[rule][0])
            del self._dedup[oldest]
        return True

    def _archive(self, alert: Alert, segment: SpeechSegment, text: str) -> None:
        start = alert.start if alert.start is not None else segment.start
        end = alert.end if alert.end is not None else segment.end
        held = self._ring.clip(start - EVIDENCE_CONTEXT_S, end + EVIDENCE_CONTEXT_S)
        clip, clip_start = held if held is not None else (segment.audio, segment.start)
        alert.evidence_id = self.resources.evidence.record_alert(
            alert, clip=clip, clip_start=clip_start, transcript=text
        )

    # -- results out (event loop) -----------------------------------------------------
    def _deliver(self, result: UtteranceResult) -> None:
        res = self.resources
        res.metrics.add_processing(result.segment.duration, result.wall_s)
        for alert in result.deduplicated:
            res.metrics.alerts_deduplicated.labels(category=alert.category).inc()
        transcript = result.transcript
        if transcript is None or not transcript.text.strip():
            return
        line: dict[str, Any] = {
            "start": round(transcript.start, 3),
            "end": round(transcript.end, 3),
            "text": transcript.text,
        }
        if transcript.heard is not None:
            line["heard"] = transcript.heard
        if len(self.transcript) < MAX_SESSION_TRANSCRIPT_UTTERANCES:
            self.transcript.append(line)
        self.push({"type": "transcript", "final": True, **line})
        arrived = self._arrivals.arrival_of(result.segment.end)
        for alert in result.alerts:
            wire = alert.wire()
            self.push({"type": "alert", **wire})
            res.hub.publish(wire)
            self.alerts_sent += 1
            res.metrics.alerts.labels(category=alert.category, severity=alert.severity).inc()
            if arrived is not None:
                res.metrics.alert_latency.observe(time.monotonic() - arrived)

    def push(self, frame: dict[str, Any]) -> None:
        """Queue ``frame`` for the anchor's socket (held across reconnects, bounded)."""
        if len(self.outbox) >= MAX_OUTBOX_FRAMES:
            victim = next((f for f in self.outbox if f["type"] == "transcript"), self.outbox[0])
            self.outbox.remove(victim)
            self.resources.metrics.outbox_dropped.labels(type=victim["type"]).inc()
        self.outbox.append(frame)
        self.outbox_ready.set()

    # -- lifecycle --------------------------------------------------------------------
    def detach(self, connection: Any) -> None:
        """``connection`` is gone: keep the session for ``resume_grace_s``, then finish it."""
        if self.connection is not connection:
            return
        self.connection = None
        if self.finishing:
            return
        grace = self.resources.settings.resume_grace_s
        loop = asyncio.get_running_loop()
        self._grace_timer = loop.call_later(grace, self.finish_soon, "resume grace expired")

    def attach(self, connection: Any) -> None:
        """Bind ``connection`` as the room's socket (cancels a pending grace expiry)."""
        if self._grace_timer is not None:
            self._grace_timer.cancel()
            self._grace_timer = None
        self.connection = connection

    def finish_soon(self, reason: str) -> asyncio.Task[None]:
        """Start :meth:`finish` without waiting for it (idempotent)."""
        if self._finish_task is None:
            self._finish_task = asyncio.get_running_loop().create_task(self._finish(reason))
            if self.on_finishing is not None:
                self.on_finishing(self._finish_task)
        return self._finish_task

    async def finish(self, reason: str) -> None:
        """Flush every pending utterance, deliver its alerts, record the session, queue ``stopped``."""
        await asyncio.shield(self.finish_soon(reason))

    async def _finish(self, reason: str) -> None:
        if self._grace_timer is not None:
            self._grace_timer.cancel()
            self._grace_timer = None
        record_id = None
        try:
            self._take_16k(self._resampler.flush())
            for segment in self._segmenter.flush():
                self._enqueue(segment)
            await self._idle.wait()
            self.resources.scheduler.forget(self)
            ended_at = datetime.now(UTC)
            if self.accepted_bytes or self.transcript:
                # a session that never received audio has nothing to keep (and a client churning
                # empty sessions must not fill the archive)
                record_id = await self.resources.scheduler.run_blocking(
                    partial(
                        self.resources.evidence.record_session,
                        session_id=self.session_id,
                        room_id=self.room_id,
                        anchor_id=self.anchor_id,
                        transcript=list(self.transcript),
                        started_at=self.started_at,
                        ended_at=ended_at,
                    )
                )
        except Exception:
            # the room still ends (its client gets `stopped`, the room is freed); what was sent stays sent
            log.exception("room %s session %s failed while finishing", self.room_id, self.session_id)
            self.resources.scheduler.forget(self)
            self.push(
                {
                    "type": "error",
                    "code": "internal",
                    "fatal": False,
                    "message": "the end of the stream could not be flushed completely",
                }
            )
        self.push(
            {
                "type": "stopped",
                "session_id": self.session_id,
                "reason": reason,
                "next_seq": self.next_seq,
                "stream_time": round(self.stream_time_s, 3),
                "alerts": self.alerts_sent,
                "utterances": len(self.transcript),
                "transcript_record": record_id,
            }
        )
        self.finished.set()
        if self.on_finished is not None:
            self.on_finished(self)
        log.info(
            "room %s session %s finished (%s): %d alerts",
            self.room_id,
            self.session_id,
            reason,
            self.alerts_sent,
        )
