"""``monitor scan --text``: each UTF-8 line of the input is one utterance; alerts carry ``line``."""

from __future__ import annotations

from collections.abc import Callable
from typing import BinaryIO

from monitor.alerts import Alert
from monitor.detection import ComplianceSession
from monitor.errors import TextInputError
from monitor.room import Utterance
from monitor.scan.output import utterance_record


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
