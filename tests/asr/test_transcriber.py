"""The real model: no text for music, applause or near-silence; bounded cost; version naming."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from monitor.asr.audio import SAMPLE_RATE
from monitor.asr.transcriber import Transcriber, load_transcriber
from monitor.asr.vad import SpeechSegment, segment_samples

from .conftest import synth_music, synth_room_tone

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def transcriber(settings) -> Transcriber:
    return load_transcriber(settings)


def applause(seconds: float, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    out = np.zeros(n, dtype=np.float32)
    for _ in range(int(seconds * 40)):  # ~40 claps a second
        i = int(rng.integers(0, n - 400))
        out[i : i + 400] += rng.standard_normal(400) * np.exp(-np.arange(400) / 60) * 0.3
    return out


NON_SPEECH = {
    "music": lambda: synth_music(20.0, seed=0),
    "quiet_music": lambda: synth_music(12.0, seed=5) * 0.3,
    "near_silence": lambda: synth_room_tone(10.0, dbfs=-60.0),
    "applause": lambda: applause(8.0),
}


@pytest.mark.parametrize("kind", sorted(NON_SPEECH))
def test_non_speech_through_vad_gives_no_text(transcriber: Transcriber, kind: str) -> None:
    audio = NON_SPEECH[kind]()
    texts = [transcriber.transcribe(s) for s in segment_samples(audio)]
    assert [t.text for t in texts if t is not None] == []


@pytest.mark.parametrize("kind", sorted(NON_SPEECH))
def test_gate_alone_rejects_non_speech_the_vad_let_through(transcriber: Transcriber, kind: str) -> None:
    # Hand the decoder the audio directly, as if the VAD had been fooled: Whisper does write
    # something for it (the raw decode), but nothing survives the gate.
    audio = NON_SPEECH[kind]()[: 15 * SAMPLE_RATE]
    segment = SpeechSegment(start=0.0, end=audio.size / SAMPLE_RATE, audio=audio)
    assert transcriber.transcribe(segment) is None


def test_model_version_names_the_embedded_model(transcriber: Transcriber) -> None:
    assert transcriber.model_version == "whisper-base-ct2-int8@905e5bf8336b"


def test_load_is_cached(settings, transcriber: Transcriber) -> None:
    assert load_transcriber(settings) is transcriber


def test_decode_cost_is_bounded_on_long_noise(transcriber: Transcriber) -> None:
    # the longest segment the segmenter hands over, full of loud noise: one decode, bounded tokens
    noise = (np.random.default_rng(7).standard_normal(15 * SAMPLE_RATE) * 0.3).astype(np.float32)
    started = time.perf_counter()
    raw = transcriber.decode(noise)
    elapsed = time.perf_counter() - started
    assert len(raw.text) <= 16 + 15 * 14  # MIN_TOKENS + duration * MAX_TOKENS_PER_S
    assert elapsed < 15.0  # generous on 2 busy cores; typical is under 2 s


def test_concurrent_calls_are_safe(transcriber: Transcriber) -> None:
    audio = synth_room_tone(3.0)
    segment = SpeechSegment(0.0, 3.0, audio)
    results: list[object] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append(transcriber.transcribe(segment))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert results == [None, None, None]
