"""``monitor scan``: alerts for transcript lines (``--text``) or audio files.

``monitor scan --text [--jsonl]`` reads UTF-8 lines from standard input; each line is
one utterance and its alerts carry ``line`` (0-based). ``monitor scan FILE...``
transcribes audio files (see monitor/asr/scan_audio.py). Output: one JSON alert a
line with ``--jsonl``; otherwise one readable line per alert.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from monitor.alerts import Alert
from monitor.config import load_settings
from monitor.errors import TextInputError
from monitor.pipeline import ComplianceSession, load_detectors
from monitor.room import RoomContext, Utterance


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("scan", help="scan transcript lines or audio files for risky claims")
    parser.add_argument("files", nargs="*", type=Path, help="audio files (any format PyAV decodes)")
    parser.add_argument("--text", action="store_true", help="read UTF-8 transcript lines from stdin")
    parser.add_argument("--jsonl", action="store_true", help="one JSON alert per line")
    parser.add_argument("--room-category", help="room category context, e.g. jewelry, cosmetics, food")
    parser.set_defaults(run=run)


def format_alert(alert: Alert) -> str:
    """One readable line: where, category/severity, what was heard, the reminder."""
    if alert.line is not None:
        where = f"line {alert.line}"
    else:
        where = f"{alert.file or ''} {alert.start or 0:7.2f}-{alert.end or 0:7.2f}s".strip()
    return (
        f"{where}  {alert.category}/{alert.severity}  [{alert.source} {alert.confidence:.2f}] "
        f"{alert.matched!r} ({alert.rule_id})  -> {alert.reminder}"
    )


def make_emitter(jsonl: bool, out: Callable[[str], None] = print) -> Callable[[Alert], None]:
    def emit(alert: Alert) -> None:
        out(json.dumps(alert.wire(), ensure_ascii=False) if jsonl else format_alert(alert))

    return emit


def scan_text_lines(stream: BinaryIO, session: ComplianceSession, emit: Callable[[Alert], None]) -> list[str]:
    """Scan every line of ``stream``; returns one error message per undecodable line."""
    errors = []
    for number, raw in enumerate(stream):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            errors.append(str(TextInputError(f"line {number}: invalid UTF-8 at byte {exc.start}")))
            continue
        for alert in session.feed(Utterance(line.rstrip("\r\n"))):
            alert.line = number
            emit(alert)
    return errors


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    emit = make_emitter(args.jsonl)
    if args.text == bool(args.files):
        print("monitor scan: give either --text (lines on stdin) or audio FILEs", file=sys.stderr)
        return 2
    if args.files:
        from monitor.asr.scan_audio import scan_files

        return scan_files(list(args.files), settings=settings, emit=emit, room_category=args.room_category)
    session = ComplianceSession(load_detectors(settings), context=RoomContext(category=args.room_category))
    errors = scan_text_lines(sys.stdin.buffer, session, emit)
    for message in errors:
        print(f"monitor scan: {message}", file=sys.stderr)
    return 1 if errors else 0
