"""``monitor demo``: a server on a free loopback port, one sample room streamed through it.

Shows the whole path a live room takes: ``/v1/ingest`` with a bearer token, VAD
endpointing, Whisper, detection, the archive (a temporary one unless ``--data-dir``),
and each alert printed the moment it comes back::

    .venv/bin/monitor demo                 # the live-room sample at 4x real time
    .venv/bin/monitor demo FILE --speed 1  # any audio file PyAV decodes, live speed
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from monitor.config import REPO_ROOT, TokenGrant, load_settings
from monitor.errors import InputError

AUDIO_SUFFIXES = (".wav", ".ogg", ".opus", ".flac", ".mp3", ".m4a")
SAMPLE_SEARCH_DIRS = (REPO_ROOT / "samples" / "audio" / "live", REPO_ROOT / "samples" / "audio")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``monitor demo`` to the ``monitor`` parser."""
    parser = subparsers.add_parser(
        "demo",
        help="start a server on loopback and stream a sample room through it, printing alerts live",
        description="Streams one sample room through a local server and prints each alert as it arrives.",
    )
    parser.add_argument("file", nargs="?", type=Path, help="audio file (default: the live-room sample)")
    parser.add_argument("--speed", type=float, default=4.0, help="x real time (default 4; 1 = live)")
    parser.add_argument("--category", default=None, help="room category sent as context (e.g. jewelry)")
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="archive folder (default: a temporary one)"
    )
    parser.add_argument("--transcripts", action="store_true", help="also print each final transcript")
    parser.set_defaults(run=run_demo)


def default_sample() -> Path:
    """The live-room sample if it exists, else the first audio clip under samples/audio/."""
    for folder in SAMPLE_SEARCH_DIRS:
        if not folder.is_dir():
            continue
        pattern = "*" if folder.name == "live" else "**/*"
        for path in sorted(folder.glob(pattern)):
            if path.suffix.lower() in AUDIO_SUFFIXES and "generated" not in path.parts:
                return path
    raise InputError("no sample audio found under samples/audio/; pass an audio FILE")


def _format_alert(alert: dict[str, Any]) -> str:
    evidence = alert.get("evidence_id") or "-"
    return (
        f"[{alert['start']:7.1f}-{alert['end']:6.1f} s] {alert['severity']:<9} {alert['category']:<24} "
        f"「{alert['matched']}」 {alert['reminder']}  (evidence {evidence[:12]})"
    )


def run_demo(args: argparse.Namespace) -> int:
    path = args.file or default_sample()
    with tempfile.TemporaryDirectory(prefix="monitor-demo-") as scratch:
        data_dir = args.data_dir or Path(scratch) / "archive"
        return asyncio.run(_demo(path, args, data_dir))


async def _demo(path: Path, args: argparse.Namespace, data_dir: Path) -> int:
    from monitor.asr.audio import decode_file
    from monitor.server.app import MonitorServer
    from monitor.server.client import float_to_pcm16, stream_room

    token = "demo-" + secrets.token_hex(8)
    settings = load_settings(
        host="127.0.0.1",
        port=0,
        data_dir=data_dir,
        tokens={token: TokenGrant(role="admin")},
        max_ingest_speed=max(8.0, args.speed * 2),
    )
    samples = await asyncio.get_running_loop().run_in_executor(None, decode_file, path)
    server = MonitorServer(settings)
    await server.start()
    print(f"demo: server on ws://127.0.0.1:{server.port} (loading models...)", flush=True)
    await server.loaded.wait()
    if server.load_error is not None:
        await server.drain()
        raise server.load_error
    duration_s = samples.size / 16000
    print(
        f"demo: streaming {path.name} ({duration_s:.0f} s of audio) at {args.speed:g}x real time", flush=True
    )
    started = time.monotonic()

    def show(frame: dict[str, Any]) -> None:
        if frame["type"] == "alert":
            print(_format_alert(frame), flush=True)
        elif frame["type"] == "transcript" and args.transcripts:
            print(f"  ({frame['start']:.1f}-{frame['end']:.1f} s) {frame['text']}", flush=True)
        elif frame["type"] == "error":
            print(f"  server notice {frame['code']}: {frame['message']}", flush=True)

    context = {"category": args.category} if args.category else None
    try:
        result = await stream_room(
            f"ws://127.0.0.1:{server.port}/v1/ingest",
            token,
            room_id="demo-room",
            anchor_id="demo-anchor",
            pcm=float_to_pcm16(samples),
            speed=args.speed,
            context=context,
            on_frame=show,
        )
    finally:
        await server.drain()
    wall_s = time.monotonic() - started
    by_category = Counter(alert["category"] for alert in result.alerts)
    archived = sum(1 for alert in result.alerts if alert.get("evidence_id"))
    summary = {
        "file": str(path),
        "audio_s": round(duration_s, 1),
        "wall_s": round(wall_s, 1),
        "utterances": len(result.transcripts),
        "alerts": len(result.alerts),
        "archived": archived,
        "by_category": dict(sorted(by_category.items())),
    }
    print(
        f"demo: {len(result.alerts)} alert(s) in {duration_s:.0f} s of audio, {archived} archived; "
        f"wall {wall_s:.1f} s",
        flush=True,
    )
    print(json.dumps(summary, ensure_ascii=False), flush=True)
    return 0 if result.stopped is not None else 1
