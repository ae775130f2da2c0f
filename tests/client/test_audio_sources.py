"""``file_audio``: files and URLs (a real HTTP server on loopback) to PCM s16le 16 kHz."""

from __future__ import annotations

import asyncio
import functools
import http.server
import threading
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from monitor.client import file_audio
from monitor.errors import AudioDecodeError


async def read_all(source: str | Path) -> bytes:
    return b"".join([block async for block in file_audio(source, block_s=0.5)])


@pytest.fixture(scope="module")
def tone_wav(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """1.3 s of a 440 Hz tone as a 16 kHz mono WAV, and its PCM."""
    t = np.arange(int(1.3 * 16000)) / 16000
    pcm = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype("<i2").tobytes()
    path = tmp_path_factory.mktemp("wav") / "tone.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(pcm)
    return path, pcm


@pytest.fixture(scope="module")
def http_folder(tone_wav: tuple[Path, bytes]) -> Iterator[str]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tone_wav[0].parent))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join(5)


def test_a_file_is_decoded_to_the_same_pcm(tone_wav: tuple[Path, bytes]) -> None:
    path, pcm = tone_wav
    assert asyncio.run(read_all(path)) == pcm


def test_a_url_is_decoded_to_the_same_pcm(tone_wav: tuple[Path, bytes], http_folder: str) -> None:
    _, pcm = tone_wav
    decoded = np.frombuffer(asyncio.run(read_all(f"{http_folder}/tone.wav")), dtype="<i2")
    assert decoded.size == len(pcm) // 2
    assert np.abs(decoded.astype(int) - np.frombuffer(pcm, dtype="<i2")).max() <= 1


def test_unreadable_sources_name_themselves(tmp_path: Path, http_folder: str) -> None:
    with pytest.raises(AudioDecodeError, match="no such file"):
        asyncio.run(read_all(tmp_path / "missing.wav"))
    with pytest.raises(AudioDecodeError, match=r"^http://127\.0\.0\.1:\d+/missing\.wav: cannot open \("):
        asyncio.run(read_all(f"{http_folder}/missing.wav"))
