"""How many live rooms one server keeps up with: N rooms streaming at once, in real time.

For each N (default 1, 2, 4, 6, 8) a fresh ``monitor serve`` subprocess gets N rooms
streaming the live-room recording concurrently at real time (room i starts i/N of
the way into the recording, so rooms do not speak in unison). Prints, per N, the p95
and max latency from the end of each claim utterance to its reminder, recall, and
the real-time factor (server processing seconds per second of audio, all rooms);
then the largest N whose p95 stays within the target, and one JSON summary line.

    .venv/bin/python benchmarks/stream_load.py                       # 60 s per room
    .venv/bin/python benchmarks/stream_load.py --rooms 1 2 4 --seconds 90 --target 2.5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from typing import Any

import numpy as np
from stream_latency import (
    Claim,
    LiveStream,
    claim_latencies,
    cpu_seconds,
    fmt,
    load_stream,
    metric,
    percentile,
    serve,
)

from monitor.asr.audio import SAMPLE_RATE
from monitor.server.client import StreamResult, float_to_pcm16, stream_room


def room_stream(stream: LiveStream, offset_s: float, seconds: float) -> LiveStream:
    """``seconds`` of the recording from ``offset_s`` (wrapping around), with its claims re-timed."""
    total = stream.audio.size
    begin = int(offset_s * SAMPLE_RATE) % total
    length = int(seconds * SAMPLE_RATE)
    idx = (np.arange(length) + begin) % total
    claims = []
    for lap in (0, 1):
        shift = lap * stream.duration_s - offset_s
        for c in stream.claims:
            start, end = c.start + shift, c.end + shift
            if start >= 0 and end <= seconds:
                claims.append(Claim(start, end, c.categories, c.text))
    return LiveStream(f"{stream.name}@{offset_s:.0f}s", stream.audio[idx], sorted(claims, key=lambda c: c.start))


async def run_rooms(streams: list[LiveStream], port: int, token: str) -> list[StreamResult]:
    return list(
        await asyncio.gather(
            *(
                stream_room(
                    f"ws://127.0.0.1:{port}/v1/ingest",
                    token,
                    room_id=f"load-{i}",
                    pcm=float_to_pcm16(s.audio),
                    speed=1.0,
                )
                for i, s in enumerate(streams)
            )
        )
    )


def score_rooms(streams: list[LiveStream], results: list[StreamResult]) -> dict[str, Any]:
    """Claims, detections, recall and latency percentiles (end of claim -> its reminder) over all rooms."""
    latencies: list[float] = []
    claims = 0
    for s, result in zip(streams, results, strict=True):
        scored = claim_latencies(s, result, speed=1.0)
        claims += len(scored)
        latencies += [lat for _, lat, _ in scored if lat is not None]
    p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
    return {
        "claims": claims,
        "detected": len(latencies),
        "recall": round(len(latencies) / claims, 3) if claims else None,
        "latency_p50_s": p50 and round(p50, 3),
        "latency_p95_s": p95 and round(p95, 3),
        "latency_max_s": round(max(latencies), 3) if latencies else None,
    }


def measure(stream: LiveStream, rooms: int, seconds: float, env: dict[str, str]) -> dict[str, Any]:
    streams = [room_stream(stream, i * stream.duration_s / rooms, seconds) for i in range(rooms)]
    with serve(env) as (port, token, pid):
        cpu_before = cpu_seconds(pid)
        began = time.monotonic()
        results = asyncio.run(run_rooms(streams, port, token))
        wall_s = time.monotonic() - began
        cpu_s = cpu_seconds(pid) - cpu_before
        processing_s = metric(port, "monitor_processing_seconds_total")
        audio_s = metric(port, "monitor_audio_seconds_total")
        throttled = metric(port, "monitor_frames_throttled_total")
    return {
        "rooms": rooms,
        **score_rooms(streams, results),
        "rtf": round(processing_s / max(audio_s, 1e-9), 3),
        "throttled_frames": int(throttled),
        # CPU the server burnt per second of room audio: with C cores, about C / this rooms fit
        "server_cpu_s_per_room_audio_s": round(cpu_s / (rooms * seconds), 3),
        "wall_s": round(wall_s, 1),
        "audio_s_per_room": seconds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rooms", type=int, nargs="+", default=[1, 2, 4, 6, 8])
    parser.add_argument("--seconds", type=float, default=60.0, help="audio streamed per room")
    parser.add_argument("--target", type=float, default=2.5, help="p95 latency bound in seconds")
    parser.add_argument("--workers", type=int, default=None, help="MONITOR_SERVER_WORKERS for the server")
    parser.add_argument("--asr-workers", type=int, default=None, help="MONITOR_ASR_WORKERS for the server")
    parser.add_argument("--asr-threads", type=int, default=None, help="MONITOR_ASR_THREADS for the server")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the server subprocess too
    env = {
        name: str(value)
        for name, value in (
            ("MONITOR_SERVER_WORKERS", args.workers),
            ("MONITOR_ASR_WORKERS", args.asr_workers),
            ("MONITOR_ASR_THREADS", args.asr_threads),
        )
        if value is not None
    }
    stream = load_stream(None)
    print(
        f"stream {stream.name}: {stream.duration_s:.0f} s, {len(stream.claims)} claims; "
        f"{args.seconds:g} s per room; {os.cpu_count()} CPUs",
        flush=True,
    )
    rows = []
    for rooms in args.rooms:
        row = measure(stream, rooms, args.seconds, env)
        rows.append(row)
        print(
            f"  N={rooms:<2} p50 {fmt(row['latency_p50_s']):>5} s  p95 {fmt(row['latency_p95_s']):>5} s  "
            f"max {fmt(row['latency_max_s']):>5} s  recall {row['recall']}  RTF {row['rtf']:.3f}  "
            f"throttled {row['throttled_frames']}  server CPU/room-audio {row['server_cpu_s_per_room_audio_s']:.3f}",
            flush=True,
        )
    keeping_up = [r["rooms"] for r in rows if r["latency_p95_s"] is not None and r["latency_p95_s"] <= args.target]
    best = max(keeping_up) if keeping_up else 0
    # the CPU bound, independent of what else runs on the machine: cores / CPU seconds per room-second
    cpu_per_room = min(r["server_cpu_s_per_room_audio_s"] for r in rows)
    cpu_bound_rooms = round(2 / cpu_per_room, 1) if cpu_per_room > 0 else None
    print(
        f"largest N with p95 <= {args.target:g} s: {best}; CPU-bound estimate for 2 idle cores: "
        f"{cpu_bound_rooms} rooms ({cpu_per_room:.3f} CPU s per room-second)"
    )
    print(
        json.dumps(
            {
                "benchmark": "stream_load",
                "target_p95_s": args.target,
                "max_rooms": best,
                "cpu_bound_rooms_2_cores": cpu_bound_rooms,
                "cpus": os.cpu_count(),
                "server_env": env,
                "runs": rows,
            },
            ensure_ascii=False,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
