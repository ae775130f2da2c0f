"""A real server on loopback for the SDK and ``monitor push``, the audio they push, and a TCP proxy
that drops a connection mid-stream (tests/server/conftest.py's :class:`RunningServer`)."""

from __future__ import annotations

import asyncio
import threading
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from server.conftest import CLAIM_CLIPS, RunningServer, server_settings  # tests/ is the import root

SAMPLE_RATE = 16000


@pytest.fixture(scope="module")
def running_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = RunningServer(server_settings(tmp_path_factory.mktemp("archive")))
    yield server
    server.close()


@pytest.fixture(scope="session")
def show_pcm() -> bytes:
    """Three claims (absolute, medical, cosmetic) with pauses: about 14 s of 16 kHz PCM s16le."""
    from monitor.asr.audio import decode_file
    from monitor.client import float_to_pcm16

    pause = np.zeros(int(1.5 * SAMPLE_RATE), dtype=np.float32)
    parts: list[np.ndarray] = []
    for path in CLAIM_CLIPS.values():
        parts += [decode_file(path), pause]
    return float_to_pcm16(np.concatenate(parts))


@pytest.fixture(scope="session")
def show_wav(show_pcm: bytes, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("audio") / "show.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(show_pcm)
    return path


class DroppingProxy:
    """A loopback TCP proxy to ``target_port`` on its own thread; the first connection is aborted
    (both sides reset, like a network drop) once ``drop_after`` bytes went from client to server."""

    def __init__(self, target_port: int, drop_after: int) -> None:
        self.target_port = target_port
        self.drop_after = drop_after
        self.connections = 0
        self.dropped = 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-proxy", daemon=True)
        self.thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0), self.loop
        ).result(10)
        self.port: int = self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        drop = self.connections == 1
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: bool) -> None:
            forwarded = 0
            while data := await reader.read(65536):
                if upstream and drop and forwarded + len(data) >= self.drop_after:
                    self.dropped += 1
                    client_writer.transport.abort()
                    server_writer.transport.abort()
                    return
                forwarded += len(data)
                writer.write(data)
                await writer.drain()

        tasks = [
            asyncio.create_task(pipe(client_reader, server_writer, True)),
            asyncio.create_task(pipe(server_reader, client_writer, False)),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for writer in (client_writer, server_writer):
                writer.close()

    def close(self) -> None:
        self._server.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def make_proxy() -> Iterator[object]:
    proxies: list[DroppingProxy] = []

    def make(target_port: int, drop_after: int) -> DroppingProxy:
        proxy = DroppingProxy(target_port, drop_after)
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.close()
