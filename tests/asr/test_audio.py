"""Decoding: every format PyAV reads comes out as float32 mono 16 kHz; bad files fail with one clear line."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from monitor.asr.audio import (
    SAMPLE_RATE,
    StreamResampler,
    decode_file,
    iter_decode_file,
    pcm16le_to_float32,
    resample,
)
from monitor.errors import AudioDecodeError

from .conftest import FORMATS, write_audio, write_video_only


def tone(seconds: float, freq: float = 440.0, rate: int = SAMPLE_RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("suffix", sorted(FORMATS))
def test_every_format_decodes_to_16k_mono_float32(tmp_path: Path, suffix: str) -> None:
    path = write_audio(tmp_path / f"tone.{suffix}", tone(2.0, rate=22050), rate=22050, stereo=suffix == "mp3")
    samples = decode_file(path)
    assert samples.dtype == np.float32 and samples.ndim == 1
    # codecs add priming/padding of a few tens of ms at most
    assert abs(samples.size / SAMPLE_RATE - 2.0) < 0.08
    middle = samples[SAMPLE_RATE // 2 : SAMPLE_RATE]
    # RMS of a 0.5 sine is 0.354; stereo (identical channels) is averaged, not summed
    assert 0.3 < float(np.sqrt(np.mean(middle**2))) < 0.4
    spectrum = np.abs(np.fft.rfft(middle))
    assert abs(np.argmax(spectrum) * SAMPLE_RATE / middle.size - 440.0) < 5.0


def test_audio_track_of_a_video_file_is_decoded(tmp_path: Path) -> None:
    # an mp4 whose only stream is audio is a "video container"; one with video and no audio fails below
    path = write_audio(tmp_path / "clip.m4a", tone(1.0), rate=SAMPLE_RATE)
    assert abs(decode_file(path).size / SAMPLE_RATE - 1.0) < 0.08


def test_long_file_is_yielded_in_bounded_blocks(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "long.flac", tone(5.0), rate=SAMPLE_RATE)
    blocks = list(iter_decode_file(path, block_s=2.0))
    assert [b.size for b in blocks[:2]] == [2 * SAMPLE_RATE, 2 * SAMPLE_RATE]
    assert np.concatenate(blocks).size == 5 * SAMPLE_RATE


def message(exc_info: pytest.ExceptionInfo[AudioDecodeError]) -> str:
    text = str(exc_info.value)
    assert "\n" not in text
    return text


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.mp3"
    with pytest.raises(AudioDecodeError) as info:
        decode_file(path)
    assert message(info) == f"{path}: no such file"


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(AudioDecodeError) as info:
        decode_file(path)
    assert message(info) == f"{path}: empty file"


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(AudioDecodeError) as info:
        decode_file(tmp_path)
    assert message(info) == f"{tmp_path}: is a directory, not an audio file"


def test_non_audio_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp3"
    path.write_text("这不是音频文件，只是一些文字。\n" * 20, encoding="utf-8")
    with pytest.raises(AudioDecodeError) as info:
        decode_file(path)
    assert re.fullmatch(re.escape(f"{path}: not a readable audio or video file (") + r".+\)", message(info))


def test_corrupt_file(tmp_path: Path) -> None:
    good = write_audio(tmp_path / "good.flac", tone(1.0), rate=SAMPLE_RATE).read_bytes()
    path = tmp_path / "corrupt.flac"
    # a valid start followed by garbage where the stream info and frames should be
    path.write_bytes(good[:200] + bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8)))
    with pytest.raises(AudioDecodeError) as info:
        decode_file(path)
    assert message(info) == f"{path}: not a readable audio or video file (End of file)"


def test_truncated_file_names_the_time_of_the_failure(tmp_path: Path) -> None:
    good = write_audio(tmp_path / "good.flac", tone(1.0), rate=SAMPLE_RATE).read_bytes()
    path = tmp_path / "cut.flac"
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(AudioDecodeError) as info:
        decode_file(path)
    assert re.fullmatch(
        re.escape(f"{path}: corrupt audio stream at ")
        + r"0\.\d s \(Invalid data found when processing input\)",
        message(info),
    )


def test_video_without_audio_track(tmp_path: Path) -> None:
    path = write_video_only(tmp_path / "silent_film.mp4")
    with pytest.raises(AudioDecodeError) as info:
        decode_file(path)
    assert message(info) == f"{path}: no audio stream"


def test_pcm16le_to_float32_scales_exactly() -> None:
    data = np.array([0, 16384, -32768, 32767], dtype="<i2").tobytes()
    assert pcm16le_to_float32(data).tolist() == [0.0, 0.5, -1.0, 32767 / 32768]
    assert pcm16le_to_float32(data).dtype == np.float32


def test_pcm16le_odd_length_is_refused() -> None:
    with pytest.raises(ValueError, match="odd length \\(3 bytes\\)"):
        pcm16le_to_float32(b"\x00\x01\x02")


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_resample_keeps_duration_and_pitch(rate: int) -> None:
    out = resample(tone(1.0, 300.0, rate=rate), rate)
    assert abs(out.size - SAMPLE_RATE) <= 32
    spectrum = np.abs(np.fft.rfft(out[:8000]))
    assert abs(np.argmax(spectrum) * SAMPLE_RATE / 8000 - 300.0) < 4.0


def test_stream_resampler_in_20ms_frames_equals_one_pass() -> None:
    source = tone(2.0, 300.0, rate=48000)
    resampler = StreamResampler(48000)
    parts = [resampler.feed(source[i : i + 960]) for i in range(0, source.size, 960)]  # 20 ms frames
    out = np.concatenate([*parts, resampler.flush()])
    whole = resample(source, 48000)
    assert out.size == whole.size == 2 * SAMPLE_RATE
    assert float(np.abs(out - whole).max()) < 1e-5  # the filter state carries over: no clicks at frame edges
