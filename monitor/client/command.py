"""``monitor push FILE_OR_URL --server ws://HOST:PORT --room R``: stream a recording into a running server.

The file or URL (anything PyAV opens) is decoded to 16 kHz and sent at real time (``--speed X``:
X times; ``--speed 0``: as fast as the server takes it) with the SDK (:mod:`monitor.client`).
Alerts are printed as they come (one readable line each, or the alert's JSON with ``--jsonl``;
``--transcript`` adds ``{"type":"utterance","start","end","text"}`` per utterance). A dropped
connection is resumed (one line on stderr per attempt); the end is ``stop``, after which every
alert of the stream has been printed; exit status 0.

Exit status 1 with one line ``monitor push: <reason>`` on stderr when the server cannot be
reached, refuses the token (HTTP 401/403) or the stream (a fatal error frame), the file or URL
cannot be read, or no resume succeeded within ``--resume-timeout`` seconds. Ctrl-C once ends
the audio early (``stop`` is still sent and the remaining alerts printed); twice, at once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from pathlib import Path
from typing import Any

from monitor.client.audio import is_url
from monitor.client.errors import ClientError
from monitor.client.events import Alert, AudioGap, Reconnecting, ServerError, Stopped, Transcript
from monitor.client.ingest import RESUME_TIMEOUT_S, IngestClient
from monitor.errors import InputError

EXIT_OK = 0
EXIT_FAILED = 1
"""Unreachable server, refused token or stream, unreadable input, or no resume in time."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``push`` sub-command to the ``monitor`` parser."""
    parser = subparsers.add_parser(
        "push",
        help="stream an audio/video file or URL into a running server, print alerts as they come",
        description="Stream FILE_OR_URL into ROOM on a running server (docs/CLIENT.md).",
    )
    parser.add_argument("source", metavar="FILE_OR_URL", help="audio or video file, or a URL PyAV opens")
    parser.add_argument(
        "--server",
        required=True,
        help="the server, e.g. ws://127.0.0.1:8765; a cluster's gateways comma-separated (a resume tries the next)",
    )
    parser.add_argument("--room", required=True, help="room_id to stream into")
    token = parser.add_mutually_exclusive_group()
    token.add_argument("--token", help="bearer token (role ingest, anchor or admin)")
    token.add_argument("--token-file", type=Path, help="file whose first line is the token (keeps it off ps)")
    parser.add_argument(
        "--speed", type=float, default=1.0, help="times real time (default 1; 0: as fast as the server reads)"
    )
    parser.add_argument("--anchor", help="anchor_id carried on every alert")
    parser.add_argument("--room-category", help="room category context, e.g. jewelry, cosmetics, food")
    parser.add_argument("--jsonl", action="store_true", help="one JSON alert per line")
    parser.add_argument("--transcript", action="store_true", help="also print every utterance as it is heard")
    parser.add_argument(
        "--resume-timeout",
        type=float,
        default=RESUME_TIMEOUT_S,
        help=f"seconds to keep trying to resume a dropped connection (default {RESUME_TIMEOUT_S:g})",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        token = _read_token(args.token_file) if args.token_file is not None else args.token
        if args.speed < 0:
            raise ValueError(f"--speed must be 0 or more, got {args.speed:g}")
        if not is_url(args.source) and not Path(args.source).is_file():
            what = "is a directory" if Path(args.source).is_dir() else "no such file"
            raise InputError(f"{args.source}: {what}")
        client = IngestClient(args.server.split(","), token=token, resume_timeout_s=args.resume_timeout)
    except (ValueError, InputError) as exc:
        print(f"monitor push: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return asyncio.run(_push(client, args))


def _read_token(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"--token-file {path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from exc
    token = lines[0].strip() if lines else ""
    if not token:
        raise InputError(f"--token-file {path}: empty")
    return token


async def _push(client: IngestClient, args: argparse.Namespace) -> int:
    context = {"category": args.room_category} if args.room_category else None
    stream = client.push_file(args.room, args.source, speed=args.speed or None, anchor_id=args.anchor, context=context)
    loop = asyncio.get_running_loop()
    interrupted = False

    def on_interrupt() -> None:
        nonlocal interrupted
        if interrupted:
            raise KeyboardInterrupt
        interrupted = True
        print("monitor push: ending the audio; waiting for the last alerts (Ctrl-C again to quit)", file=sys.stderr)
        stream.end_audio()

    with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread, or no signals here
        loop.add_signal_handler(signal.SIGINT, on_interrupt)
    try:
        async with stream:
            async for event in stream:
                _show(event, args)
    except (ClientError, InputError) as exc:
        print(f"monitor push: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)
    stopped = stream.stopped
    if stopped is not None and not args.jsonl:
        print(
            f"monitor push: stopped at {stopped.stream_time:.1f} s: {stopped.alerts} alerts, "
            f"{stopped.utterances} utterances (session {stopped.session_id})",
            file=sys.stderr,
        )
    return EXIT_OK


def _show(event: Any, args: argparse.Namespace) -> None:
    if isinstance(event, Alert):
        if args.jsonl:
            print(json.dumps(event.fields(), ensure_ascii=False), flush=True)
        else:
            print(format_alert(event), flush=True)
    elif isinstance(event, Transcript) and args.transcript:
        if args.jsonl:
            record = {"type": "utterance", "start": event.start, "end": event.end, "text": event.text}
            print(json.dumps(record, ensure_ascii=False), flush=True)
        else:
            print(f"{event.start:7.2f}-{event.end:7.2f}s  heard: {event.text}", flush=True)
    elif isinstance(event, Reconnecting):
        print(
            f"monitor push: {event.reason}; reconnecting in {event.delay_s:g} s (attempt {event.attempt})",
            file=sys.stderr,
            flush=True,
        )
    elif isinstance(event, AudioGap):
        print(
            f"monitor push: the server lost {event.seconds:.1f} s of audio the client no longer held "
            f"(bytes {event.from_seq}-{event.to_seq}); sent as silence",
            file=sys.stderr,
            flush=True,
        )
    elif isinstance(event, ServerError):
        print(f"monitor push: server: {event.code}: {event.message}", file=sys.stderr, flush=True)
    elif isinstance(event, Stopped) and event.reason != "stop":
        print(f"monitor push: the server ended the session ({event.reason})", file=sys.stderr, flush=True)


def format_alert(alert: Alert) -> str:
    """One readable line, like ``monitor scan``'s: stream seconds, category/severity, what was heard, the reminder."""
    return (
        f"{alert.start or 0:7.2f}-{alert.end or 0:7.2f}s  {alert.category}/{alert.severity}  "
        f"[{alert.source} {alert.confidence:.2f}] {alert.matched!r} ({alert.rule_id})  -> {alert.reminder}"
    )
