"""How ``monitor scan`` prints: alerts and utterance records, as JSON lines or readable lines."""

from __future__ import annotations

import json
from collections.abc import Callable

from monitor.alerts import Alert


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
