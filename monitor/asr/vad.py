"""Voice activity detection and endpointing: audio in, finished utterances out.

:class:`StreamingSegmenter` runs faster-whisper's bundled Silero VAD (ONNX, v6) on
512-sample windows (32 ms at 16 kHz), keeping the network's recurrent state and the
64-sample context across ``feed`` calls, so feeding a stream in any chunking gives
exactly the probabilities of one pass over the whole stream. An utterance ends after
``min_silence_ms`` of non-speech (the endpoint), or is cut at ``max_utterance_s``
(at the last short pause if there was one), so the transcriber never waits on, nor
decodes, more than a bounded stretch of audio::

    segmenter = StreamingSegmenter(start_offset_s=0.0)
    for chunk in chunks:                     # float32 mono 16 kHz, any length
        for segment in segmenter.feed(chunk):
            transcriber.transcribe(segment)  # segment.start/end in stream seconds
    for segment in segmenter.flush():        # end of stream
        ...

The same class serves files (``scan``) and live rooms (the server), so both cut
utterances identically.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cache

import numpy as np

from monitor.asr.audio import SAMPLE_RATE

WINDOW_SAMPLES = 512
"""Silero's window at 16 kHz (32 ms)."""
CONTEXT_SAMPLES = 64
"""Samples of the previous window Silero v6 sees in front of each window."""
MAX_UTTERANCE_S = 15.0
"""Longest utterance handed to the transcriber; a longer monologue is cut."""
MIN_SILENCE_MS = 400
"""Non-speech that ends an utterance (the endpointing delay)."""
SPEECH_PAD_MS = 200
"""Audio kept on each side of detected speech so word edges are not clipped."""
MIN_SPEECH_MS = 250
"""Shorter bursts (clicks, a cough) are dropped."""
MIN_CUT_PAUSE_MS = 96
"""A pause at least this long is a preferred place to cut an over-long utterance."""
VAD_BATCH_WINDOWS = 1024
"""Windows scored per ONNX call (bounds the batch on long file blocks, ~33 s)."""


@dataclass(frozen=True)
class SpeechSegment:
    """One utterance found by the VAD.

    ``start``/``end`` are stream seconds (``start_offset_s`` plus samples seen);
    ``audio`` holds exactly the samples from ``start`` to ``end`` (float32, 16 kHz).
    """

    start: float
    end: float
    audio: np.ndarray

    @property
    def duration(self) -> float:
        return self.end - self.start


class _SileroSession:
    """The bundled Silero ONNX model; one per process, safe to call from several threads."""

    def __init__(self) -> None:
        from faster_whisper.vad import get_vad_model

        self.session = get_vad_model().session

    def run(
        self, batch: np.ndarray, h: np.ndarray, c: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        probs, h, c = self.session.run(None, {"input": batch, "h": h, "c": c})
        return np.asarray(probs).reshape(-1), h, c


_silero_lock = threading.Lock()


@cache
def _silero() -> _SileroSession:
    with _silero_lock:
        return _SileroSession()


class SileroStream:
    """Per-stream Silero state: ``probabilities(windows)`` continues where the last call ended."""

    def __init__(self) -> None:
        self._model = _silero()
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT_SAMPLES, dtype=np.float32)

    def state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The recurrent state and the last context samples (copies), to resume elsewhere."""
        return self._h.copy(), self._c.copy(), self._context.copy()

    def set_state(self, h: np.ndarray, c: np.ndarray, context: np.ndarray) -> None:
        self._h = np.asarray(h, dtype=np.float32).reshape(1, 1, 128).copy()
        self._c = np.asarray(c, dtype=np.float32).reshape(1, 1, 128).copy()
        self._context = np.asarray(context, dtype=np.float32).reshape(CONTEXT_SAMPLES).copy()

    def probabilities(self, windows: np.ndarray) -> np.ndarray:
        """Speech probability of each row of ``windows`` (shape ``(n, 512)``, float32)."""
        out = []
        for i in range(0, windows.shape[0], VAD_BATCH_WINDOWS):
            part = windows[i : i + VAD_BATCH_WINDOWS]
            previous = np.concatenate([self._context[None, :], part[:-1, -CONTEXT_SAMPLES:]], axis=0)
            batch = np.ascontiguousarray(np.concatenate([previous, part], axis=1), dtype=np.float32)
            probs, self._h, self._c = self._model.run(batch, self._h, self._c)
            self._context = part[-1, -CONTEXT_SAMPLES:].copy()
            out.append(probs)
        return np.concatenate(out) if out else np.zeros(0, np.float32)


class _SampleBuffer:
    """Samples from absolute index ``start`` on, in a growable array (amortised appends)."""

    def __init__(self) -> None:
        self._data = np.zeros(SAMPLE_RATE * 4, dtype=np.float32)
        self._size = 0
        self.start = 0  # absolute sample index of _data[0]

    @property
    def end(self) -> int:
        return self.start + self._size

    def append(self, samples: np.ndarray) -> None:
        needed = self._size + samples.size
        if needed > self._data.size:
            grown = np.zeros(max(needed, self._data.size * 2), dtype=np.float32)
            grown[: self._size] = self._data[: self._size]
            self._data = grown
        self._data[self._size : needed] = samples
        self._size = needed

    def slice(self, begin: int, end: int) -> np.ndarray:
        """A copy of absolute samples ``[begin, end)`` (clamped to what is held)."""
        b = max(begin, self.start) - self.start
        e = min(end, self.end) - self.start
        return self._data[b:e].copy() if e > b else np.zeros(0, np.float32)

    def held(self) -> np.ndarray:
        """A copy of every sample held (from ``start``)."""
        return self._data[: self._size].copy()

    def drop_before(self, index: int) -> None:
        """Forget samples before absolute index ``index``."""
        cut = min(max(index - self.start, 0), self._size)
        if cut:
            self._data[: self._size - cut] = self._data[cut : self._size]
            self._size -= cut
            self.start += cut


@dataclass(frozen=True)
class SegmenterState:
    """Everything a :class:`StreamingSegmenter` holds, so another process can continue the
    stream exactly (same windows, same probabilities, same cuts). Sample indices are
    absolute from the segmenter's first sample; arrays are float32."""

    start_offset_s: float
    vad_h: np.ndarray
    vad_c: np.ndarray
    vad_context: np.ndarray
    audio_start: int
    audio: np.ndarray
    unscored: np.ndarray
    scored: int
    speech_start: int | None
    silence_start: int | None
    cut_at: int | None
    resume_at: int | None


class StreamingSegmenter:
    """Per-room endpointing; feed audio as it arrives, get finished utterances.

    ``start_offset_s`` is the stream time of the first sample fed (for a resumed
    stream). ``min_silence_ms`` is the pause that ends an utterance, which is also
    the endpointing latency; ``max_utterance_s`` bounds an utterance's length.
    ``threshold`` is Silero's speech probability threshold (speech ends below
    ``threshold - 0.15``). Not thread-safe: one segmenter per stream.
    """

    def __init__(
        self,
        *,
        start_offset_s: float = 0.0,
        min_silence_ms: int = MIN_SILENCE_MS,
        max_utterance_s: float = MAX_UTTERANCE_S,
        speech_pad_ms: int = SPEECH_PAD_MS,
        min_speech_ms: int = MIN_SPEECH_MS,
        threshold: float = 0.5,
    ) -> None:
        if max_utterance_s <= 1.0:
            raise ValueError(f"max_utterance_s must exceed 1 s, got {max_utterance_s}")
        self.start_offset_s = start_offset_s
        self.threshold = threshold
        self.neg_threshold = max(threshold - 0.15, 0.01)
        self._min_silence = int(min_silence_ms * SAMPLE_RATE / 1000)
        self._pad = int(speech_pad_ms * SAMPLE_RATE / 1000)
        self._min_speech = int(min_speech_ms * SAMPLE_RATE / 1000)
        self._min_cut_pause = int(MIN_CUT_PAUSE_MS * SAMPLE_RATE / 1000)
        self._max_speech = int(max_utterance_s * SAMPLE_RATE) - 2 * self._pad
        self._vad = SileroStream()
        self._audio = _SampleBuffer()
        self._unscored = np.zeros(0, dtype=np.float32)  # < 512 samples waiting for a full window
        self._scored = 0  # absolute index just past the last scored window
        # utterance state (absolute sample indices)
        self._speech_start: int | None = None
        self._silence_start: int | None = None  # start of the current run of non-speech
        self._cut_at: int | None = None  # end of speech before the last pause >= MIN_CUT_PAUSE_MS
        self._resume_at: int | None = None  # where speech resumed after that pause

    # -- public API -------------------------------------------------------------------
    def feed(self, samples: np.ndarray) -> list[SpeechSegment]:
        """Take the next float32 mono 16 kHz samples; return utterances that ended in them."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if samples.size == 0:
            return []
        self._audio.append(samples)
        pending = np.concatenate([self._unscored, samples]) if self._unscored.size else samples
        whole = pending.size // WINDOW_SAMPLES * WINDOW_SAMPLES
        self._unscored = pending[whole:].copy()
        if not whole:
            return []
        probs = self._vad.probabilities(pending[:whole].reshape(-1, WINDOW_SAMPLES))
        finished: list[SpeechSegment] = []
        for prob in probs:
            window_start = self._scored
            self._scored += WINDOW_SAMPLES
            segment = self._step(float(prob), window_start)
            if segment is not None:
                finished.append(segment)
        self._forget_old_audio()
        return finished

    def flush(self) -> list[SpeechSegment]:
        """End of stream: the utterance in progress, if any, as a finished segment."""
        if self._speech_start is None:
            return []
        end = self._silence_start if self._silence_start is not None else self._audio.end
        segment = self._emit(self._speech_start, end, tail_limit=self._audio.end)
        self._reset_utterance()
        return [segment] if segment is not None else []

    def in_progress(self) -> SpeechSegment | None:
        """The utterance being spoken now (audio so far), for partial transcripts; None in silence."""
        if self._speech_start is None:
            return None
        begin = max(self._speech_start - self._pad, self._audio.start)
        return self._make(begin, self._audio.end)

    @property
    def stream_time_s(self) -> float:
        """Stream seconds of audio fed so far."""
        return self.start_offset_s + self._audio.end / SAMPLE_RATE

    def snapshot(self) -> SegmenterState:
        """The segmenter's state (copies); :meth:`restore` on another segmenter continues from it."""
        h, c, context = self._vad.state()
        return SegmenterState(
            start_offset_s=self.start_offset_s,
            vad_h=h,
            vad_c=c,
            vad_context=context,
            audio_start=self._audio.start,
            audio=self._audio.held(),
            unscored=self._unscored.copy(),
            scored=self._scored,
            speech_start=self._speech_start,
            silence_start=self._silence_start,
            cut_at=self._cut_at,
            resume_at=self._resume_at,
        )

    def restore(self, state: SegmenterState) -> None:
        """Continue from ``state`` (taken by :meth:`snapshot`, possibly in another process);
        this segmenter's own options (silence, length, thresholds) stay as constructed."""
        self.start_offset_s = state.start_offset_s
        self._vad.set_state(state.vad_h, state.vad_c, state.vad_context)
        self._audio = _SampleBuffer()
        self._audio.start = state.audio_start
        self._audio.append(np.asarray(state.audio, dtype=np.float32))
        self._unscored = np.asarray(state.unscored, dtype=np.float32).copy()
        self._scored = state.scored
        self._speech_start = state.speech_start
        self._silence_start = state.silence_start
        self._cut_at = state.cut_at
        self._resume_at = state.resume_at

    # -- state machine ------------------------------------------------------------------
    def _step(self, prob: float, window_start: int) -> SpeechSegment | None:
        window_end = window_start + WINDOW_SAMPLES
        if self._speech_start is None:
            if prob >= self.threshold:
                self._speech_start = window_start
                self._silence_start = None
            return None

        if prob >= self.threshold:
            if self._silence_start is not None:
                if window_start - self._silence_start >= self._min_cut_pause:
                    self._cut_at, self._resume_at = self._silence_start, window_start
                self._silence_start = None
        elif prob < self.neg_threshold and self._silence_start is None:
            self._silence_start = window_start

        if self._silence_start is not None and window_end - self._silence_start >= self._min_silence:
            segment = self._emit(self._speech_start, self._silence_start, tail_limit=window_end)
            self._reset_utterance()
            return segment

        if window_end - self._speech_start > self._max_speech:
            return self._cut_long_utterance(window_end)
        return None

    def _cut_long_utterance(self, now: int) -> SpeechSegment | None:
        start = self._speech_start
        assert start is not None  # only called while in speech
        if self._cut_at is not None and self._resume_at is not None and self._cut_at - start > SAMPLE_RATE:
            cut_end, resume = self._cut_at, self._resume_at
        else:
            # no usable pause: cut hard, the next utterance starts right here
            cut_end, resume = now, now
        segment = self._emit(start, cut_end, tail_limit=resume)
        self._speech_start = resume
        self._cut_at = self._resume_at = None
        if self._silence_start is not None and self._silence_start < resume:
            self._silence_start = None
        return segment

    def _reset_utterance(self) -> None:
        self._speech_start = None
        self._silence_start = None
        self._cut_at = self._resume_at = None

    def _emit(self, speech_start: int, speech_end: int, *, tail_limit: int) -> SpeechSegment | None:
        if speech_end - speech_start < self._min_speech:
            return None
        begin = max(speech_start - self._pad, self._audio.start, 0)
        end = min(speech_end + self._pad, tail_limit, self._audio.end)
        return self._make(begin, end)

    def _make(self, begin: int, end: int) -> SpeechSegment:
        return SpeechSegment(
            start=self.start_offset_s + begin / SAMPLE_RATE,
            end=self.start_offset_s + end / SAMPLE_RATE,
            audio=self._audio.slice(begin, end),
        )

    def _forget_old_audio(self) -> None:
        # Keep the pre-speech pad in silence; in speech keep from the utterance's padded start.
        keep_from = self._scored - self._pad if self._speech_start is None else self._speech_start - self._pad
        self._audio.drop_before(keep_from)


def segment_samples(samples: np.ndarray, **options: float) -> list[SpeechSegment]:
    """Every utterance of a whole recording (float32 mono 16 kHz); ``options`` as the segmenter's."""
    segmenter = StreamingSegmenter(**options)  # type: ignore[arg-type]
    return segmenter.feed(samples) + segmenter.flush()
