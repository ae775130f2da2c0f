"""``monitor scan``: alerts for transcript lines (``--text``) or audio files.

``monitor scan --text [--jsonl]`` reads UTF-8 lines from standard input; each line is
one utterance and its alerts carry ``line`` (0-based). ``monitor scan FILE...``
transcribes audio files (see monitor/scan/files.py). Output: one JSON alert a
line with ``--jsonl``; otherwise one readable line per alert.

``--transcript`` also prints every utterance before its alerts, so users can read and
score what was heard: for audio ``{"type":"utterance","file","start","end","text"}``
(stream seconds of the file), for ``--text`` ``{"type":"utterance","line","text"}`` (the
input line as the engine received it, so alerts and lines pair on ``line``); without
``--jsonl`` one readable line each. Alert lines carry no ``type`` field (PROTOCOL.md).

``--srt DIR`` (audio files) also writes ``DIR/<stem>.srt`` per file: what was heard, with its
times, as SubRip subtitles. While standard error is a terminal, a file longer than a minute
shows a progress line there (nothing is written to it otherwise).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from monitor.config import load_settings
from monitor.detection import ComplianceSession, load_detectors
from monitor.room import RoomContext
from monitor.scan.output import make_emitter, make_transcript_emitter
from monitor.scan.text import scan_text_lines


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("scan", help="scan transcript lines or audio files for risky claims")
    parser.add_argument("files", nargs="*", type=Path, help="audio files (any format PyAV decodes)")
    parser.add_argument("--text", action="store_true", help="read UTF-8 transcript lines from stdin")
    parser.add_argument("--jsonl", action="store_true", help="one JSON alert per line")
    parser.add_argument("--room-category", help="room category context, e.g. jewelry, cosmetics, food")
    parser.add_argument(
        "--live-cut",
        action="store_true",
        help="cut utterances exactly as the live server does (MONITOR_STREAM_*), to get the alerts the live "
        "room got; default: the recording cut (longer pauses, more accurate)",
    )
    parser.add_argument(
        "--transcript", action="store_true", help="also print every utterance (what was heard) before its alerts"
    )
    parser.add_argument(
        "--srt", type=Path, metavar="DIR", help="write DIR/<file stem>.srt per audio file (what was heard, with times)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    emit = make_emitter(args.jsonl)
    if args.text == bool(args.files):
        print("monitor scan: give either --text (lines on stdin) or audio FILEs", file=sys.stderr)
        return 2
    on_utterance = make_transcript_emitter(args.jsonl) if args.transcript else None
    srt_dir: Path | None = getattr(args, "srt", None)
    if srt_dir is not None:
        if not args.files:
            print("monitor scan: --srt writes subtitles for audio FILEs, not --text", file=sys.stderr)
            return 2
        try:
            srt_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            print(f"monitor scan: --srt {srt_dir}: cannot create the folder ({exc.strerror or exc})", file=sys.stderr)
            return 2
    if args.files:
        from monitor.scan.files import scan_files

        return scan_files(
            list(args.files),
            settings=settings,
            emit=emit,
            room_category=args.room_category,
            on_utterance=on_utterance,
            srt_dir=srt_dir,
            progress=sys.stderr,
            live_cut=args.live_cut,
        )
    session = ComplianceSession(load_detectors(settings), context=RoomContext(category=args.room_category))
    errors = scan_text_lines(sys.stdin.buffer, session, emit, on_utterance)
    for message in errors:
        print(f"monitor scan: {message}", file=sys.stderr)
    return 1 if errors else 0
