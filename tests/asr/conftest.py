"""Shared helpers of the ASR tests: encode arrays to real media files, make music and room tone."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from monitor.config import REPO_ROOT

SAMPLES_DIR = REPO_ROOT / "samples" / "audio"
MANIFEST = SAMPLES_DIR / "manifest.jsonl"

# container, codec, sample format, codec rate
FORMATS = {
    "wav": ("wav", "pcm_s16le", "s16", 22050),
    "mp3": ("mp3", "libmp3lame", "s32p", 44100),
    "flac": ("flac", "flac", "s16", 48000),
    "opus": ("ogg", "libopus", "s16", 48000),
    "aac": ("adts", "aac", "fltp", 44100),
    "m4a": ("mp4", "aac", "fltp", 32000),
}


def write_audio(path: Path, samples: np.ndarray, *, rate: int = 16000, stereo: bool = False) -> Path:
    """Encode float32 mono ``samples`` at ``rate`` into ``path`` (format from the suffix)."""
    container_format, codec, sample_format, codec_rate = FORMATS[path.suffix.lstrip(".")]
    layout = "stereo" if stereo else "mono"
    with av.open(str(path), mode="w", format=container_format) as container:
        stream = container.add_stream(codec, rate=codec_rate)
        stream.layout = layout  # type: ignore[union-attr]
        if codec == "libopus":
            stream.bit_rate = 24000  # type: ignore[union-attr]
        resampler = av.AudioResampler(format=sample_format, layout=layout, rate=codec_rate)
        data = samples.astype(np.float32).reshape(1, -1)
        if stereo:
            data = np.repeat(data, 2, axis=0).reshape(1, -1, order="F")
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format="flt", layout=layout)
        frame.sample_rate = rate
        frame.time_base = Fraction(1, rate)
        frame.pts = 0
        for converted in [*resampler.resample(frame), *resampler.resample(None)]:
            for packet in stream.encode(converted):  # type: ignore[union-attr]
                container.mux(packet)
        for packet in stream.encode(None):  # type: ignore[union-attr]
            container.mux(packet)
    return path


def write_video_only(path: Path, seconds: float = 1.0) -> Path:
    """An MP4 with a video stream and no audio stream."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height = 64, 48  # type: ignore[union-attr]
        stream.pix_fmt = "yuv420p"  # type: ignore[union-attr]
        for i in range(int(seconds * 10)):
            image = np.full((48, 64, 3), (i * 20) % 255, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):  # type: ignore[union-attr]
                container.mux(packet)
        for packet in stream.encode(None):  # type: ignore[union-attr]
            container.mux(packet)
    return path


def synth_music(seconds: float, *, seed: int = 0, rate: int = 16000) -> np.ndarray:
    """A pop-like bed: chord progression of harmonic tones, a bass line and hi-hat clicks."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    out = np.zeros_like(t)
    chords = [(261.6, 329.6, 392.0), (220.0, 261.6, 329.6), (174.6, 220.0, 261.6), (196.0, 246.9, 293.7)]
    beat_s = 0.5
    for i, start in enumerate(np.arange(0, seconds, beat_s * 4)):
        mask = (t >= start) & (t < start + beat_s * 4)
        local = t[mask] - start
        envelope = np.exp(-local * 0.8)
        for f in chords[i % len(chords)]:
            for harmonic, amp in ((1, 1.0), (2, 0.4), (3, 0.2)):
                out[mask] += 0.08 * amp * envelope * np.sin(2 * np.pi * f * harmonic * local)
        bass = chords[i % len(chords)][0] / 2
        out[mask] += 0.15 * np.sin(2 * np.pi * bass * local)
    for start in np.arange(0, seconds, beat_s / 2):
        n = int(0.03 * rate)
        i0 = int(start * rate)
        click = rng.standard_normal(n) * np.exp(-np.arange(n) / (0.005 * rate)) * 0.05
        out[i0 : i0 + n] += click[: len(out[i0 : i0 + n])]
    return (out / max(np.abs(out).max(), 1e-9) * 0.5).astype(np.float32)


def synth_room_tone(seconds: float, *, dbfs: float = -60.0, seed: int = 1, rate: int = 16000) -> np.ndarray:
    """Near-silence: low-passed noise at ``dbfs`` RMS."""
    rng = np.random.default_rng(seed)
    noise = np.convolve(rng.standard_normal(int(seconds * rate)), np.ones(8) / 8, mode="same")
    noise *= 10 ** (dbfs / 20) / max(float(np.sqrt(np.mean(noise**2))), 1e-12)
    return noise.astype(np.float32)


def manifest_rows() -> list[dict[str, object]]:
    """Rows of samples/audio/manifest.jsonl (empty when the sample set is not there)."""
    if not MANIFEST.is_file():
        return []
    return [json.loads(line) for line in MANIFEST.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="session")
def settings():
    from monitor.config import load_settings

    return load_settings()
