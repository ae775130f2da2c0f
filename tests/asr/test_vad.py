"""Endpointing on real speech (a committed espeak-ng clip) with the bundled Silero VAD."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from monitor.asr.audio import SAMPLE_RATE, decode_file
from monitor.asr.vad import MIN_SILENCE_MS, SPEECH_PAD_MS, StreamingSegmenter, segment_samples

from .conftest import synth_music, synth_room_tone

SPEECH_CLIP = Path(__file__).parent / "data" / "espeak_zh.opus"  # ~6.4 s of Mandarin, no long pause


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return decode_file(SPEECH_CLIP)


def silence(seconds: float) -> np.ndarray:
    return synth_room_tone(seconds, dbfs=-60.0, seed=int(seconds * 10))


def two_utterances(speech: np.ndarray) -> tuple[np.ndarray, list[tuple[float, float]]]:
    first = speech[: 3 * SAMPLE_RATE]
    parts = [silence(1.0), first, silence(1.5), speech, silence(1.0)]
    t1 = 1.0
    t2 = t1 + first.size / SAMPLE_RATE + 1.5
    truth = [(t1, t1 + first.size / SAMPLE_RATE), (t2, t2 + speech.size / SAMPLE_RATE)]
    return np.concatenate(parts), truth


def test_room_tone_and_music_hold_no_speech() -> None:
    assert segment_samples(silence(10.0)) == []
    assert segment_samples(synth_music(10.0)) == []


def test_utterances_are_found_where_they_were_spoken(speech: np.ndarray) -> None:
    audio, truth = two_utterances(speech)
    segments = segment_samples(audio)
    assert len(segments) == 2
    for segment, (start, end) in zip(segments, truth, strict=True):
        assert abs(segment.start - start) < 0.35
        assert abs(segment.end - end) < 0.45
        assert segment.audio.size == round((segment.end - segment.start) * SAMPLE_RATE)
        assert segment.audio.dtype == np.float32


def test_any_chunking_gives_the_same_utterances(speech: np.ndarray) -> None:
    audio, _ = two_utterances(speech)
    whole = segment_samples(audio)
    rng = np.random.default_rng(11)
    segmenter = StreamingSegmenter()
    streamed = []
    i = 0
    while i < audio.size:
        n = int(rng.integers(1, 4000))
        streamed += segmenter.feed(audio[i : i + n])
        i += n
    streamed += segmenter.flush()
    assert [(s.start, s.end) for s in streamed] == [(s.start, s.end) for s in whole]
    for a, b in zip(streamed, whole, strict=True):
        assert np.array_equal(a.audio, b.audio)


def test_endpoint_follows_the_pause_closely(speech: np.ndarray) -> None:
    audio, _ = two_utterances(speech)
    segmenter = StreamingSegmenter()
    frame = SAMPLE_RATE // 50  # 20 ms frames, as a live client sends them
    delays = []
    for i in range(0, audio.size, frame):
        for segment in segmenter.feed(audio[i : i + frame]):
            heard_at = (i + frame) / SAMPLE_RATE
            speech_end = segment.end - SPEECH_PAD_MS / 1000
            delays.append(heard_at - speech_end)
    assert len(delays) == 2
    # the pause that ends the utterance, plus at most two VAD windows (64 ms)
    assert all(d <= MIN_SILENCE_MS / 1000 + 0.065 for d in delays), delays


def test_long_monologue_is_cut_at_the_bound(speech: np.ndarray) -> None:
    audio = np.concatenate([speech] * 7)  # ~45 s without a real pause
    segments = segment_samples(audio, max_utterance_s=15.0)
    assert len(segments) >= 3
    assert all(s.end - s.start <= 15.0 + 1e-6 for s in segments)
    covered = sum(s.end - s.start for s in segments)
    assert covered > 0.9 * audio.size / SAMPLE_RATE
    assert all(b.start >= a.start for a, b in itertools.pairwise(segments))


def test_stream_offset_and_in_progress(speech: np.ndarray) -> None:
    segmenter = StreamingSegmenter(start_offset_s=100.0)
    assert segmenter.feed(silence(1.0)) == []
    assert segmenter.in_progress() is None
    assert segmenter.feed(speech[: 2 * SAMPLE_RATE]) == []
    partial = segmenter.in_progress()
    assert partial is not None and 100.7 < partial.start < 101.3 and partial.end == pytest.approx(103.0)
    segments = segmenter.feed(silence(1.0))
    assert len(segments) == 1 and segments[0].start == partial.start
    assert segmenter.flush() == []
    assert segmenter.stream_time_s == pytest.approx(104.0)


def test_flush_returns_speech_cut_by_the_end_of_stream(speech: np.ndarray) -> None:
    segmenter = StreamingSegmenter()
    assert segmenter.feed(np.concatenate([silence(0.5), speech[: 2 * SAMPLE_RATE]])) == []
    flushed = segmenter.flush()
    assert len(flushed) == 1 and flushed[0].end == pytest.approx(2.5)
    assert segmenter.flush() == []
