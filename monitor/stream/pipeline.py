"""One room's stream as a plain object: audio in, utterances with their alerts out.

:class:`RoomPipeline` is the whole per-room pipeline with no asyncio, no sockets and no
archive: the caller decides when to feed audio, where to run :meth:`~RoomPipeline.process`
(the server: a worker thread; ``scan``: inline) and what to do with the results (send,
archive, print)::

    pipeline = RoomPipeline(detectors, transcriber, sample_rate=48000, context=ctx)
    for segment in pipeline.feed(samples):      # float32 mono at sample_rate
        result = pipeline.process(segment)      # transcript, alerts, suppressed repeats
    for segment in pipeline.flush():            # end of stream
        result = pipeline.process(segment)

Stages: resample to 16 kHz -> VAD segmenter (utterances) -> transcriber (gated, rescored)
-> detection (text engine, then classifier; :class:`~monitor.detection.ComplianceSession`)
-> dedup (:class:`~monitor.stream.dedup.AlertDedup`). Recent audio is kept in an
:class:`~monitor.stream.ring.AudioRing` so each result carries the evidence clip around its
utterance.

Threading: :meth:`feed` and :meth:`flush` run on one thread (the event loop), :meth:`process`
on another, one utterance at a time, in stream order; the ring is the only state both touch
and it locks itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from monitor.alerts import Alert
from monitor.asr.audio import StreamResampler, pcm16le_to_float32
from monitor.asr.vad import MAX_UTTERANCE_S, MIN_SILENCE_MS, SegmenterState, SpeechSegment, StreamingSegmenter
from monitor.detection import ComplianceSession, Detectors
from monitor.room import RoomContext, Utterance
from monitor.stream.dedup import AlertDedup
from monitor.stream.ring import RING_BUFFER_S, AudioRing

if TYPE_CHECKING:
    from monitor.asr.transcriber import Transcript
    from monitor.config import Settings

EVIDENCE_CONTEXT_S = 1.0
"""Audio kept on each side of an utterance in its evidence clip (the tail as far as received)."""


class UtteranceTranscriber(Protocol):
    """What the pipeline needs of the speech stage (:class:`~monitor.asr.transcriber.Transcriber`)."""

    @property
    def model_version(self) -> str: ...

    def transcribe(self, segment: SpeechSegment, *, room_category: str | None = None) -> Transcript | None: ...


@dataclass(frozen=True)
class StreamOptions:
    """How a stream is cut and how repeats are merged; the same for ``scan`` and ``serve``."""

    min_silence_ms: int = 350
    """Silence that ends an utterance (also the endpointing latency)."""
    max_utterance_s: float = 12.0
    """Longest utterance before a forced cut."""
    dedup_window_s: float = 20.0
    """The same rule again within this much stream time is one reminder (0: every hit)."""
    ring_s: float = RING_BUFFER_S
    """Recent audio kept to cut evidence clips."""

    @classmethod
    def from_settings(cls, settings: Settings) -> StreamOptions:
        """The live server's cut (``MONITOR_STREAM_*``: short pauses end an utterance, for latency)."""
        return cls(
            min_silence_ms=settings.stream_min_silence_ms,
            max_utterance_s=settings.stream_max_utterance_s,
            dedup_window_s=settings.dedup_window_s,
        )

    @classmethod
    def for_recordings(cls, settings: Settings | None = None) -> StreamOptions:
        """``monitor scan``'s default cut: nothing waits on a recording, so utterances may end at
        longer pauses and run longer (400 ms / 15 s: fewer sentences cut at a comma; on the audio
        benchmark's clean clips recall 0.913 against 0.870 with the live cut)."""
        dedup_window_s = settings.dedup_window_s if settings is not None else cls.dedup_window_s
        return cls(min_silence_ms=MIN_SILENCE_MS, max_utterance_s=MAX_UTTERANCE_S, dedup_window_s=dedup_window_s)


@dataclass(frozen=True)
class EvidenceClip:
    """The audio around an utterance (16 kHz float32) and the stream time of its first sample."""

    audio: np.ndarray
    start: float


@dataclass
class UtteranceResult:
    """What the pipeline made of one utterance.

    ``transcript`` is ``None`` when the utterance held no speech (gated). ``alerts`` are
    the ones to send; ``deduplicated`` the repeats the dedup stage held back. ``clip``
    is set when there are alerts to keep evidence of; ``evidence_text`` is the transcript
    as archived (with the first-pass text when rescoring rewrote a term).
    """

    segment: SpeechSegment
    transcript: Transcript | None
    alerts: list[Alert] = field(default_factory=list)
    deduplicated: list[Alert] = field(default_factory=list)
    clip: EvidenceClip | None = None

    @property
    def heard_speech(self) -> bool:
        return self.transcript is not None and bool(self.transcript.text.strip())

    @property
    def evidence_text(self) -> str:
        if self.transcript is None:
            return ""
        if self.transcript.heard is None:
            return self.transcript.text
        return f"{self.transcript.text}\nfirst pass: {self.transcript.heard}"


class RoomPipeline:
    """Per-room (or per-file) pipeline state; see the module docstring.

    ``sample_rate`` is the rate of the samples given to :meth:`feed`; ``origin_s`` the
    stream time of the first one (a stream resumed elsewhere starts later than 0).
    ``detectors`` and ``transcriber`` are shared, read-only and thread-safe.
    """

    def __init__(
        self,
        detectors: Detectors,
        transcriber: UtteranceTranscriber,
        *,
        sample_rate: int = 16000,
        room_id: str | None = None,
        anchor_id: str | None = None,
        context: RoomContext | None = None,
        origin_s: float = 0.0,
        options: StreamOptions | None = None,
    ) -> None:
        options = options or StreamOptions()
        self.options = options
        self.sample_rate = sample_rate
        self.context = context or RoomContext()
        self._transcriber = transcriber
        self._resampler = StreamResampler(sample_rate)
        self._segmenter = StreamingSegmenter(
            start_offset_s=origin_s,
            min_silence_ms=options.min_silence_ms,
            max_utterance_s=options.max_utterance_s,
        )
        self._ring = AudioRing(origin_s=origin_s, capacity_s=options.ring_s)
        self._detection = ComplianceSession(
            detectors,
            room_id=room_id,
            anchor_id=anchor_id,
            context=self.context,
            asr_version=transcriber.model_version,
        )
        self._dedup = AlertDedup(window_s=options.dedup_window_s)

    # -- audio in (one thread) ---------------------------------------------------------
    def feed(self, samples: np.ndarray) -> list[SpeechSegment]:
        """Take float32 mono samples at ``sample_rate``; return the utterances that ended in them."""
        return self._take_16k(self._resampler.feed(samples))

    def feed_pcm16(self, pcm: bytes) -> list[SpeechSegment]:
        """:meth:`feed` for little-endian 16-bit PCM (an even number of bytes; ValueError otherwise)."""
        return self.feed(pcm16le_to_float32(pcm))

    def flush(self) -> list[SpeechSegment]:
        """End of stream: the utterances still open (audio held in the resampler included)."""
        segments = self._take_16k(self._resampler.flush())
        return segments + self._segmenter.flush()

    @property
    def received_until_s(self) -> float:
        """Stream time just past the last 16 kHz sample received."""
        return self._ring.end_s

    def _take_16k(self, samples: np.ndarray) -> list[SpeechSegment]:
        if samples.size == 0:
            return []
        self._ring.append(samples)
        return self._segmenter.feed(samples)

    # -- one utterance (any one thread at a time, in stream order) ------------------------
    def process(self, segment: SpeechSegment) -> UtteranceResult:
        """Transcribe, detect and dedup one utterance; cut its evidence clip when it alerts."""
        return self.detect(segment, self.transcribe(segment))

    def transcribe(self, segment: SpeechSegment) -> Transcript | None:
        """The speech stage alone (stateless per room: it may run anywhere, e.g. a batch worker)."""
        return self._transcriber.transcribe(segment, room_category=self.context.category)

    def detect(self, segment: SpeechSegment, transcript: Transcript | None) -> UtteranceResult:
        """Detection and dedup of one transcribed utterance (the room's state: in stream order)."""
        result = UtteranceResult(segment=segment, transcript=transcript)
        if transcript is None or not result.heard_speech:
            return result
        found = self._detection.feed(Utterance(transcript.text, transcript.start, transcript.end))
        result.alerts, result.deduplicated = self._dedup.admit(found)
        if result.alerts:
            result.clip = self._clip(segment)
        return result

    def _clip(self, segment: SpeechSegment) -> EvidenceClip:
        held = self._ring.clip(segment.start - EVIDENCE_CONTEXT_S, segment.end + EVIDENCE_CONTEXT_S)
        if held is None:  # older than the ring holds: the utterance's own audio
            return EvidenceClip(segment.audio, segment.start)
        return EvidenceClip(*held)

    # -- moving a room to another process (cluster mode) -----------------------------------
    def segmenter_state(self) -> SegmenterState:
        """The VAD segmenter's exact state (call on the feeding thread, between feeds)."""
        return self._segmenter.snapshot()

    def detection_state(self) -> dict[str, Any]:
        """Detection and dedup memory as JSON-able data (call on the processing thread)."""
        state = self._detection.state
        return {
            "fired": dict(state.fired),
            "recent_topics": [sorted(topics) for topics in state.recent_topics],
            "price_reference": state.price_reference,
            "dedup": self._dedup.state(),
        }

    def restore(self, segmenter: SegmenterState, detection: dict[str, Any]) -> None:
        """Continue a room from states taken by :meth:`segmenter_state` and :meth:`detection_state`
        (possibly in another process); the evidence ring starts empty."""
        self._segmenter.restore(segmenter)
        state = self._detection.state
        state.fired.clear()
        state.fired.update({rule: int(n) for rule, n in detection["fired"].items()})
        state.recent_topics.clear()
        state.recent_topics.extend(frozenset(topics) for topics in detection["recent_topics"])
        state.price_reference = detection["price_reference"]
        self._dedup.restore(detection["dedup"])

    # -- a whole recording -------------------------------------------------------------
    def run(self, blocks: Iterable[np.ndarray]) -> Iterator[UtteranceResult]:
        """Feed every block, then flush; yield each utterance's result as soon as it is known.

        If ``blocks`` raises (a file that fails mid-way), the utterances already heard are
        still processed and yielded before the error propagates.
        """
        try:
            for block in blocks:
                for segment in self.feed(block):
                    yield self.process(segment)
        except Exception:
            for segment in self.flush():
                yield self.process(segment)
            raise
        for segment in self.flush():
            yield self.process(segment)
