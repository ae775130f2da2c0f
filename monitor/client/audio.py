"""Audio sources for :mod:`monitor.client`: async iterators of raw PCM s16le mono bytes.

* :func:`file_audio` - a local file (any format PyAV/FFmpeg opens) or a URL (HTTP, HLS,
  RTMP...), decoded to 16 kHz on a worker thread, so the event loop never blocks;
* :func:`float_to_pcm16` - float32 samples in ``[-1, 1]`` to PCM bytes, for sources of your own.

A source of your own is any ``AsyncIterable[bytes]`` of PCM s16le mono at the sample rate
you declare; chunk sizes do not matter (the stream re-cuts them into frames).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Generator
from pathlib import Path

import numpy as np

from monitor.errors import AudioDecodeError

SAMPLE_RATE = 16000
"""Samples per second of the PCM :func:`file_audio` yields."""

DECODE_BLOCK_S = 1.0
"""Seconds of audio per block decoded at a time (bounds memory and the first frame's delay)."""

URL_OPEN_TIMEOUT_S = 15.0
"""How long opening or reading a URL may stall before it is an error."""


def float_to_pcm16(samples: np.ndarray) -> bytes:
    """Float32 samples in ``[-1, 1]`` to little-endian 16-bit PCM bytes (clipped)."""
    clipped = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 32767 / 32768)
    return (clipped * 32768.0).astype("<i2").tobytes()


def is_url(source: str | Path) -> bool:
    """Whether ``source`` names a URL (``scheme://...``) rather than a local file."""
    return isinstance(source, str) and "://" in source


async def file_audio(source: str | Path, *, block_s: float = DECODE_BLOCK_S) -> AsyncIterator[bytes]:
    """PCM s16le mono 16 kHz of a file or URL, ``block_s`` seconds at a time.

    Raises :class:`~monitor.errors.AudioDecodeError` (``"<source>: <reason>"``) for a missing,
    empty or undecodable file, an unreachable URL, or no audio stream; it is raised from the
    first iteration, before anything is sent when used with :class:`~monitor.client.IngestClient`.
    """
    blocks = _url_blocks(str(source), block_s) if is_url(source) else _file_blocks(Path(source), block_s)
    try:
        while True:
            block = await asyncio.to_thread(next, blocks, None)
            if block is None:
                return
            yield block
    finally:
        blocks.close()


def _file_blocks(path: Path, block_s: float) -> Generator[bytes, None, None]:
    from monitor.asr.audio import iter_decode_file

    for samples in iter_decode_file(path, block_s=block_s):
        yield float_to_pcm16(samples)


def _url_blocks(url: str, block_s: float) -> Generator[bytes, None, None]:
    import av

    block_bytes = max(2, int(block_s * SAMPLE_RATE) * 2)
    try:
        container = av.open(url, mode="r", timeout=URL_OPEN_TIMEOUT_S)
    except (av.error.FFmpegError, OSError) as exc:
        raise AudioDecodeError(f"{url}: cannot open ({_reason(exc)})") from exc
    with container:
        if not container.streams.audio:
            raise AudioDecodeError(f"{url}: no audio stream")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        pending = bytearray()
        total = 0
        try:
            for frame in container.decode(stream):
                frame.pts = None
                for out in resampler.resample(frame):
                    pending += out.to_ndarray().astype("<i2", copy=False).tobytes()
                while len(pending) >= block_bytes:
                    yield bytes(pending[:block_bytes])
                    del pending[:block_bytes]
                    total += block_bytes
            for out in resampler.resample(None):
                pending += out.to_ndarray().astype("<i2", copy=False).tobytes()
        except av.error.FFmpegError as exc:
            at_s = (total + len(pending)) / 2 / SAMPLE_RATE
            raise AudioDecodeError(f"{url}: stream failed at {at_s:.1f} s ({_reason(exc)})") from exc
        if pending:
            yield bytes(pending)
        elif total == 0:
            raise AudioDecodeError(f"{url}: audio stream holds no samples")


def _reason(exc: BaseException) -> str:
    text = str(getattr(exc, "strerror", None) or exc).strip() or type(exc).__name__
    return text.splitlines()[0]
