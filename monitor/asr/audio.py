"""Audio in: decoding files and converting live PCM to what the ASR stage eats.

Everything downstream (VAD, Whisper) works on ``float32`` mono samples in
``[-1, 1]`` at :data:`SAMPLE_RATE` (16 kHz). Three entry points produce them:

* :func:`decode_file` / :func:`iter_decode_file` - any container PyAV (FFmpeg)
  opens: wav, mp3, aac/m4a, flac, ogg/opus, video with an audio track;
* :func:`pcm16le_to_float32` - the raw binary frames of the ingest websocket;
* :func:`resample` - live audio declared at another ``sample_rate``.

A file that cannot be used raises :class:`~monitor.errors.AudioDecodeError` with a
one-line message ``"<path>: <what is wrong>"``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np

from monitor.errors import AudioDecodeError

SAMPLE_RATE = 16000
"""Samples per second of every array this package passes around."""

DECODE_BLOCK_S = 30.0
"""Seconds of audio per block yielded by :func:`iter_decode_file` (bounds memory on long files)."""


def _first_line(exc: BaseException) -> str:
    # FFmpeg errors carry a clean reason in strerror; str() adds errno and repeats the path
    text = str(getattr(exc, "strerror", None) or exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _open_audio(path: Path) -> av.container.InputContainer:
    if not path.exists():
        raise AudioDecodeError(f"{path}: no such file")
    if path.is_dir():
        raise AudioDecodeError(f"{path}: is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise AudioDecodeError(f"{path}: empty file")
    try:
        return av.open(str(path), mode="r")
    except av.error.FFmpegError as exc:
        raise AudioDecodeError(f"{path}: not a readable audio or video file ({_first_line(exc)})") from exc
    except OSError as exc:
        raise AudioDecodeError(f"{path}: cannot open ({exc.strerror or _first_line(exc)})") from exc


def iter_decode_file(path: Path, *, block_s: float = DECODE_BLOCK_S) -> Iterator[np.ndarray]:
    """Decode the first audio stream of ``path`` as float32 mono 16 kHz blocks of ``block_s`` seconds.

    The last block may be shorter. Raises :class:`AudioDecodeError` (message
    ``"<path>: <reason>"``) for a missing, empty or non-media file, a file with no
    audio stream, a stream that fails to decode, or one that yields no samples;
    blocks already yielded before a mid-stream failure stay valid.
    """
    block_samples = max(1, int(block_s * SAMPLE_RATE))
    container = _open_audio(path)
    with container:
        if not container.streams.audio:
            raise AudioDecodeError(f"{path}: no audio stream")
        stream = container.streams.audio[0]
        # Keep the channels (planar) and average them ourselves: FFmpeg's stereo-to-mono
        # downmix sums at -3 dB each, which can push identical channels past full scale.
        resampler = av.AudioResampler(format="fltp", layout=None, rate=SAMPLE_RATE)
        pending: list[np.ndarray] = []
        pending_samples = 0
        total_samples = 0

        def converted(frames: list[av.AudioFrame]) -> Iterator[np.ndarray]:
            for out in frames:
                planes = out.to_ndarray()  # planar float32: (channels, n)
                mono = planes[0] if planes.shape[0] == 1 else planes.mean(axis=0)
                yield mono.astype(np.float32, copy=False)

        try:
            for frame in container.decode(stream):
                frame.pts = None  # let the resampler count samples itself (robust to odd timestamps)
                for samples in converted(resampler.resample(frame)):
                    pending.append(samples)
                    pending_samples += samples.size
                    while pending_samples >= block_samples:
                        joined = np.concatenate(pending)
                        yield joined[:block_samples]
                        total_samples += block_samples
                        rest = joined[block_samples:]
                        pending = [rest] if rest.size else []
                        pending_samples = rest.size
            for samples in converted(resampler.resample(None)):
                pending.append(samples)
                pending_samples += samples.size
        except av.error.FFmpegError as exc:
            at_s = (total_samples + pending_samples) / SAMPLE_RATE
            raise AudioDecodeError(
                f"{path}: corrupt audio stream at {at_s:.1f} s ({_first_line(exc)})"
            ) from exc
        if pending_samples:
            yield np.concatenate(pending)
            total_samples += pending_samples
        if total_samples == 0:
            raise AudioDecodeError(f"{path}: audio stream holds no samples")


def decode_file(path: Path) -> np.ndarray:
    """The whole first audio stream of ``path`` as float32 mono samples at 16 kHz.

    Raises :class:`AudioDecodeError` (``"<path>: <reason>"``); see :func:`iter_decode_file`.
    For hours-long files prefer :func:`iter_decode_file`, which holds one block at a time.
    """
    return np.concatenate(list(iter_decode_file(Path(path))))


def pcm16le_to_float32(data: bytes) -> np.ndarray:
    """Raw little-endian signed 16-bit PCM (mono) to float32 in ``[-1, 1)``.

    ``data`` must hold a whole number of samples (an even number of bytes); an odd
    length raises :class:`ValueError`, because a split sample would shift every
    later one.
    """
    if len(data) % 2:
        raise ValueError(f"PCM s16le frame has an odd length ({len(data)} bytes); samples are 2 bytes")
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


def resample(samples: np.ndarray, rate: int) -> np.ndarray:
    """Float32 mono samples at ``rate`` Hz to 16 kHz (band-limited, FFmpeg's resampler).

    Each call is resampled independently, which is exact for whole recordings and
    fine for live chunks of tens of milliseconds or more. ``rate == 16000`` returns
    the input unchanged (as float32).
    """
    samples = np.asarray(samples, dtype=np.float32).reshape(-1)
    if rate <= 0:
        raise ValueError(f"sample rate must be positive, got {rate}")
    if rate == SAMPLE_RATE or samples.size == 0:
        return samples
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="flt", layout="mono")
    frame.sample_rate = rate
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    parts = [out.to_ndarray().reshape(-1) for out in resampler.resample(frame)]
    parts += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    return np.concatenate(parts).astype(np.float32, copy=False) if parts else np.zeros(0, np.float32)


class StreamResampler:
    """Stateful resampling of a live stream at ``rate`` Hz to 16 kHz, chunk by chunk.

    Unlike :func:`resample`, the filter state carries across ``feed`` calls, so chunk
    boundaries leave no clicks and the output length tracks the input exactly.
    """

    def __init__(self, rate: int) -> None:
        if rate <= 0:
            raise ValueError(f"sample rate must be positive, got {rate}")
        self.rate = rate
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)

    def feed(self, samples: np.ndarray) -> np.ndarray:
        """16 kHz samples for the float32 mono chunk ``samples`` (may lag by a few ms)."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if self.rate == SAMPLE_RATE or samples.size == 0:
            return samples
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = self.rate
        return self._collect(self._resampler.resample(frame))

    def flush(self) -> np.ndarray:
        """The samples still held in the filter at the end of the stream."""
        if self.rate == SAMPLE_RATE:
            return np.zeros(0, np.float32)
        return self._collect(self._resampler.resample(None))

    @staticmethod
    def _collect(frames: list[av.AudioFrame]) -> np.ndarray:
        parts = [out.to_ndarray().reshape(-1) for out in frames]
        return np.concatenate(parts).astype(np.float32, copy=False) if parts else np.zeros(0, np.float32)
