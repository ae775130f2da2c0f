"""``monitor scan``: alerts for transcript lines (``--text``) or audio files.

``monitor scan --text [--jsonl]`` reads UTF-8 lines from standard input; each line is
one utterance and its alerts carry ``line`` (0-based). ``monitor scan FILE...``
transcribes audio files (see monitor/asr/scan_audio.py). Output: one JSON alert a
line with ``--jsonl``; otherwise one readable line per alert.

``--transcript`` also prints every utterance before its alerts, so users can read and
score what was heard: for audio ``{"type":"utterance","file","start","end","text"}``
(stream seconds of the file), for ``--text`` ``{"type":"utterance","line","text"}`` (the
input line as the engine received it, so alerts and lines pair on ``line``); without
``--jsonl`` one readable line each. Alert lines carry no ``type`` field (PROTOCOL.md).
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
    parser.add_argument(
        "--transcript", action="store_true", help="also print every utterance (what was heard) before its alerts"
    )
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


def utterance_record(
    text: str, *, line: int | None = None, file: str | None = None, start: float | None = None, end: float | None = None
) -> dict[str, object]:
    """The ``{"type": "utterance", ...}`` record of ``--transcript`` (locators only when set)."""
    record: dict[str, object] = {"type": "utterance"}
    if file is not None:
        record["file"] = file
    if line is not None:
        record["line"] = line
    if start is not None:
        record["start"] = round(start, 3)
    if end is not None:
        record["end"] = round(end, 3)
    record["text"] = text
    return record


def make_transcript_emitter(jsonl: bool, out: Callable[[str], None] = print) -> Callable[[dict[str, object]], None]:
    """Prints ``utterance_record`` dicts: JSON with ``--jsonl``, else one readable line."""

    def emit(record: dict[str, object]) -> None:
        if jsonl:
            out(json.dumps(record, ensure_ascii=False))
            return
        if "line" in record:
            where = f"line {record['line']}"
        else:
            where = f"{record.get('file', '')} {record.get('start', 0):7.2f}-{record.get('end', 0):7.2f}s".strip()
        out(f"{where}  heard: {record['text']}")

    return emit


def scan_text_lines(
    stream: BinaryIO,
    session: ComplianceSession,
    emit: Callable[[Alert], None],
    on_utterance: Callable[[dict[str, object]], None] | None = None,
) -> list[str]:
    """Scan every line of ``stream``; returns one error message per undecodable line.

    ``on_utterance`` (``--transcript``) receives each decoded line's utterance record first.
    """
    errors = []
    for number, raw in enumerate(stream):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            errors.append(str(TextInputError(f"line {number}: invalid UTF-8 at byte {exc.start}")))
            continue
        text = line.rstrip("\r\n")
        if on_utterance is not None:
            on_utterance(utterance_record(text, line=number))
        for alert in session.feed(Utterance(text)):
            alert.line = number
            emit(alert)
    return errors


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    emit = make_emitter(args.jsonl)
    if args.text == bool(args.files):
        print("monitor scan: give either --text (lines on stdin) or audio FILEs", file=sys.stderr)
        return 2
    on_utterance = make_transcript_emitter(args.jsonl) if args.transcript else None
    if args.files:
        from monitor.asr.scan_audio import scan_files

        return scan_files(
            list(args.files),
            settings=settings,
            emit=emit,
            room_category=args.room_category,
            on_utterance=on_utterance,
        )
    session = ComplianceSession(load_detectors(settings), context=RoomContext(category=args.room_category))
    errors = scan_text_lines(sys.stdin.buffer, session, emit, on_utterance)
    for message in errors:
        print(f"monitor scan: {message}", file=sys.stderr)
    return 1 if errors else 0
