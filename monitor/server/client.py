"""A minimal ``/v1/ingest`` client: stream PCM at a chosen speed and collect what comes back.

Used by ``monitor demo``, the benchmarks and the tests; it is also the reference for
writing a client (docs/PROTOCOL.md)::

    result = await stream_room(url, token, room_id="r1", pcm=pcm16le_bytes, sample_rate=16000,
                               speed=1.0, on_frame=print)

``speed`` is real-time multiples (1.0 = live, 4.0 = four times faster, 0 = as fast as
the server reads). Frames are sent on a schedule computed from the samples already
sent, so pacing does not drift.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from websockets.asyncio.client import ClientConnection, connect

FRAME_MS = 100
"""Audio per binary frame sent by the client, in milliseconds."""


def float_to_pcm16(samples: np.ndarray) -> bytes:
    """Float32 samples in ``[-1, 1]`` to little-endian 16-bit PCM bytes (clipped)."""
    clipped = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 32767 / 32768)
    return (clipped * 32768.0).astype("<i2").tobytes()


@dataclass
class StreamResult:
    """What a streaming run produced. Times are ``time.monotonic()`` seconds."""

    ready: dict[str, Any] = field(default_factory=dict)
    frames: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    started_at: float = 0.0  # when the first audio byte was sent
    stopped: dict[str, Any] | None = None
    close_code: int | None = None
    close_reason: str = ""

    @property
    def alerts(self) -> list[dict[str, Any]]:
        return [frame for _, frame in self.frames if frame["type"] == "alert"]

    @property
    def transcripts(self) -> list[dict[str, Any]]:
        return [frame for _, frame in self.frames if frame["type"] == "transcript"]

    def sent_at(self, stream_s: float, speed: float) -> float:
        """Monotonic time the sample at ``stream_s`` was "captured" (its frame leaves when the frame ends)."""
        return self.started_at + stream_s / speed


async def _receive(
    ws: ClientConnection, result: StreamResult, on_frame: Callable[[dict[str, Any]], Any] | None
) -> None:
    async for message in ws:
        frame = json.loads(message)
        result.frames.append((time.monotonic(), frame))
        if on_frame is not None:
            on_frame(frame)
        if frame["type"] == "stopped":
            result.stopped = frame


async def stream_room(
    url: str,
    token: str,
    *,
    room_id: str,
    pcm: bytes,
    sample_rate: int = 16000,
    anchor_id: str | None = None,
    context: dict[str, Any] | None = None,
    speed: float = 1.0,
    frame_ms: int = FRAME_MS,
    on_frame: Callable[[dict[str, Any]], Any] | None = None,
    stop: bool = True,
) -> StreamResult:
    """Stream ``pcm`` (16-bit mono at ``sample_rate``) to ``url`` (``ws://.../v1/ingest``), then stop.

    Returns everything the server sent, with arrival times; raises the websockets
    ``InvalidStatus`` if the handshake is refused (401/403/503).
    """
    result = StreamResult()
    start: dict[str, Any] = {
        "type": "start",
        "room_id": room_id,
        "anchor_id": anchor_id,
        "sample_rate": sample_rate,
        "encoding": "pcm_s16le",
        "channels": 1,
    }
    if context is not None:
        start["context"] = context
    frame_bytes = max(2, int(sample_rate * frame_ms / 1000) * 2)
    async with connect(
        url, additional_headers={"Authorization": f"Bearer {token}"}, max_size=2**22, compression=None
    ) as ws:
        await ws.send(json.dumps(start))
        result.ready = json.loads(await ws.recv())
        if result.ready.get("type") != "ready":
            raise RuntimeError(f"server refused the stream: {result.ready}")
        receiver = asyncio.create_task(_receive(ws, result, on_frame))
        result.started_at = time.monotonic()
        for offset in range(0, len(pcm), frame_bytes):
            chunk = pcm[offset : offset + frame_bytes]
            if speed > 0:
                # like a live source: a frame goes out once its last sample has been "captured"
                due = result.started_at + ((offset + len(chunk)) / 2 / sample_rate) / speed
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            await ws.send(chunk)
        if stop:
            await ws.send(json.dumps({"type": "stop"}))
            with contextlib.suppress(Exception):
                await receiver
        else:
            receiver.cancel()
        result.close_code = ws.close_code
        result.close_reason = ws.close_reason or ""
    return result
