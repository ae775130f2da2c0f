"""One live room's glue around its pipeline; survives a dropped socket until resumed.

A :class:`RoomSession` holds a :class:`~monitor.stream.RoomPipeline` (resampling, VAD,
transcription, detection, dedup, evidence audio: all I/O-free) and adds what only a live
room needs: the queue of utterances waiting for a worker and its back-pressure, the
archive writes, the outbox of frames for the anchor, the resume grace timer. The
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
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from monitor.asr.vad import SpeechSegment
from monitor.config import Settings
from monitor.detection import Detectors
from monitor.room import RoomContext
from monitor.server.buffers import ArrivalLog
from monitor.server.evidence import EvidenceWriter
from monitor.server.hub import AlertHub
from monitor.server.metrics import ServerMetrics
from monitor.server.scheduler import FairScheduler
from monitor.stream import RoomPipeline, StreamOptions, UtteranceResult
from monitor.stream.keys import segment_key

if TYPE_CHECKING:
    from monitor.asr.transcriber import Transcriber
    from monitor.cluster.checkpoint import SessionCheckpoint
    from monitor.cluster.gateway import ClusterRoom

log = logging.getLogger(__name__)

MAX_OUTBOX_FRAMES = 512
"""Frames held for the anchor's socket (while it is slow or reconnecting); oldest transcripts go first."""

MAX_SESSION_TRANSCRIPT_UTTERANCES = 50_000
"""Utterances kept for the session's final transcript record (about 50 hours of talk)."""



class RoomSocket(Protocol):
    """The connection streaming into a session (:class:`~monitor.server.connection.RoomConnection`)."""

    def supersede(self) -> None:
        """A newer connection resumed the room: this one stops reading and sending, and closes."""


@dataclass(frozen=True)
class Resources:
    """What every room shares: loaded once per server, read-only (or internally locked)."""

    settings: Settings
    detectors: Detectors
    transcriber: Transcriber | None  # None in cluster mode (workers transcribe)
    evidence: EvidenceWriter  # in cluster mode a BrokerEvidence (the archiver writes)
    hub: AlertHub
    metrics: ServerMetrics
    scheduler: FairScheduler


@dataclass(frozen=True)
class _Processed:
    """A worker's result for one utterance, with the wall time it took (real-time factor)."""

    result: UtteranceResult
    wall_s: float


class RoomSession:
    """One live room; see the module docstring. Methods run on the event loop except
    :meth:`_process`, which a worker thread runs for one utterance at a time."""

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
        session_id: str | None = None,
        cluster: ClusterRoom | None = None,
    ) -> None:
        settings = resources.settings
        self.resources = resources
        self.session_id = session_id or uuid.uuid4().hex
        self.cluster = cluster  # cluster mode: lease epoch, remote transcription, checkpoints
        self.opened_by = opened_by  # fingerprint of the token that opened it: it may resume without session_id
        self.room_id = room_id
        self.anchor_id = anchor_id
        self.sample_rate = sample_rate
        self.context = context or RoomContext()
        self.base_seq = base_seq
        self.accepted_bytes = 0
        origin_s = base_seq / 2 / sample_rate
        self.started_at = datetime.now(UTC)
        self.pipeline = RoomPipeline(
            resources.detectors,
            _transcriber_of(resources, cluster),
            sample_rate=sample_rate,
            room_id=room_id,
            anchor_id=anchor_id,
            context=self.context,
            origin_s=origin_s,
            options=StreamOptions.from_settings(settings),
        )
        self._arrivals = ArrivalLog()
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
        self.connection: RoomSocket | None = None  # the socket streaming in, if any
        self._grace_timer: asyncio.TimerHandle | None = None
        self._finish_task: asyncio.Task[None] | None = None
        self.finished = asyncio.Event()
        self.on_finished: Callable[[RoomSession], None] | None = None
        self.on_finishing: Callable[[asyncio.Task[None]], None] | None = None  # the server tracks it for drain
        # told (on the event loop) of each utterance's alerts, in wire form, once they are sent
        self.on_alerts: Callable[[RoomSession, list[dict[str, Any]]], None] | None = None

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
        segments = self.pipeline.feed_pcm16(pcm)
        self.accepted_bytes += len(pcm)
        self.resources.metrics.add_audio(len(pcm) / 2 / self.sample_rate)
        self._arrivals.mark(self.pipeline.received_until_s)
        if self.cluster is not None:
            self.cluster.on_segments(self.pipeline, self.next_seq, segments)
        for segment in segments:
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

    def take_job(self) -> Callable[[], _Processed]:
        segment = self._pending.popleft()
        self.pending_audio_s = max(0.0, self.pending_audio_s - segment.duration)
        self.resources.metrics.pending_audio_seconds.dec(segment.duration)
        if self.pending_audio_s < self.resources.settings.max_pending_audio_s:
            self.capacity.set()
        return partial(self._process, segment)

    def job_done(self, future: Future[_Processed]) -> None:
        try:
            processed = future.result()
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
            self._deliver(processed)
            if self.cluster is not None:
                self.cluster.checkpoint(self.checkpoint(segment_key(processed.result.segment)))
        if not self._pending:
            self._idle.set()

    # -- worker thread ----------------------------------------------------------------
    def _process(self, segment: SpeechSegment) -> _Processed:
        """The pipeline's work on one utterance, then its alerts archived (runs on a worker thread)."""
        began = time.perf_counter()
        result = self.pipeline.process(segment)
        fence = None
        if self.cluster is not None:
            self.cluster.after_process(self.pipeline, result)  # stable alert ids, detection checkpoint
            fence = self.cluster.fence
        if result.clip is not None:
            for alert in result.alerts:
                alert.evidence_id = self.resources.evidence.record_alert(
                    alert,
                    clip=result.clip.audio,
                    clip_start=result.clip.start,
                    transcript=result.evidence_text,
                    fence=fence,
                )
        return _Processed(result, time.perf_counter() - began)

    # -- results out (event loop) -----------------------------------------------------
    def _deliver(self, processed: _Processed) -> None:
        res = self.resources
        result = processed.result
        res.metrics.add_processing(result.segment.duration, processed.wall_s)
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
        sent = []
        for alert in result.alerts:
            wire = alert.wire()
            self.push({"type": "alert", **wire})
            res.hub.publish(wire)
            sent.append(wire)
            self.alerts_sent += 1
            res.metrics.alerts.labels(category=alert.category, severity=alert.severity).inc()
            if arrived is not None:
                res.metrics.alert_latency.observe(time.monotonic() - arrived)
        if sent and self.on_alerts is not None:
            try:
                self.on_alerts(self, sent)
            except Exception:  # timelines and inspections never cost a room its stream
                log.exception("room %s: the alerts-sent hook failed", self.room_id)

    def push(self, frame: dict[str, Any]) -> None:
        """Queue ``frame`` for the anchor's socket (held across reconnects, bounded)."""
        if len(self.outbox) >= MAX_OUTBOX_FRAMES:
            victim = next((f for f in self.outbox if f["type"] == "transcript"), self.outbox[0])
            self.outbox.remove(victim)
            self.resources.metrics.outbox_dropped.labels(type=victim["type"]).inc()
        self.outbox.append(frame)
        self.outbox_ready.set()

    # -- cluster mode: checkpoints and takeover ---------------------------------------------
    def checkpoint(self, delivered_key: str) -> SessionCheckpoint | None:
        """What another gateway needs to continue this room, at the boundary just delivered (or
        None when the segmenter has already cut a later utterance: the next boundary will do)."""
        from monitor.cluster.checkpoint import SessionCheckpoint

        assert self.cluster is not None
        state = self.cluster.consistent_state(delivered_key)
        if state is None:
            return None
        segmenter, next_seq, detection = state
        return SessionCheckpoint(
            session_id=self.session_id,
            room_id=self.room_id,
            anchor_id=self.anchor_id,
            sample_rate=self.sample_rate,
            context=self.context.model_dump(),
            opened_by=self.opened_by,
            started_at=self.started_at.isoformat(),
            next_seq=next_seq,
            segmenter=segmenter,
            detection=detection,
            transcript=list(self.transcript),
            alerts_sent=self.alerts_sent,
            epoch=self.cluster.epoch,
            gateway=self.cluster.gateway.gateway_id,
        )

    def restore(self, checkpoint: SessionCheckpoint) -> None:
        """Continue from another gateway's checkpoint (this session was built with its
        ``session_id`` and ``base_seq = checkpoint.next_seq``)."""
        self.pipeline.restore(checkpoint.segmenter, checkpoint.detection)
        self.transcript = list(checkpoint.transcript)
        self.alerts_sent = checkpoint.alerts_sent
        self.started_at = datetime.fromisoformat(checkpoint.started_at)
        self.opened_by = checkpoint.opened_by

    def abandon(self, reason: str) -> None:
        """Another gateway owns the room now: stop here without flushing or archiving anything
        (the new owner continues from the last checkpoint)."""
        if self._grace_timer is not None:
            self._grace_timer.cancel()
            self._grace_timer = None
        self.resources.scheduler.forget(self)
        self._pending.clear()
        if self.connection is not None:
            self.connection.supersede()
        log.warning("room %s session %s abandoned: %s", self.room_id, self.session_id, reason)
        self.finished.set()
        if self.on_finished is not None:
            self.on_finished(self)

    # -- lifecycle --------------------------------------------------------------------
    def detach(self, connection: RoomSocket) -> None:
        """``connection`` is gone: keep the session for ``resume_grace_s``, then finish it."""
        if self.connection is not connection:
            return
        self.connection = None
        if self.finishing:
            return
        grace = self.resources.settings.resume_grace_s
        loop = asyncio.get_running_loop()
        self._grace_timer = loop.call_later(grace, self.finish_soon, "resume grace expired")

    def attach(self, connection: RoomSocket) -> None:
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
            segments = self.pipeline.flush()
            self._arrivals.mark(self.pipeline.received_until_s)
            for segment in segments:
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
                        fence=None if self.cluster is None else self.cluster.fence,
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


def _transcriber_of(resources: Resources, cluster: ClusterRoom | None) -> Any:
    if cluster is not None:
        return cluster.transcriber
    if resources.transcriber is None:
        raise RuntimeError("no transcriber: cluster-mode resources need a ClusterRoom per session")
    return resources.transcriber
