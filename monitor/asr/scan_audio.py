"""``monitor scan FILE...``: alerts for recorded audio or video files.

Each file is decoded block by block (memory stays bounded on hours-long
recordings), cut into utterances by the same :class:`StreamingSegmenter` as live
rooms, transcribed, and fed to one :class:`ComplianceSession` per file. Alerts carry
``file`` (the path as given) and ``start``/``end`` in seconds of that file.

The models load once for all files. An unreadable file is reported on stderr in
one line (``monitor scan: <path>: <reason>``) and the remaining files are still scanned.
With ``on_utterance`` (``monitor scan --transcript``) every committed utterance is also
reported, as ``{"type": "utterance", "file", "start", "end", "text"}``, before its alerts.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from monitor.alerts import Alert
from monitor.asr.audio import iter_decode_file
from monitor.asr.transcriber import Transcriber, Transcript, load_transcriber
from monitor.asr.vad import SpeechSegment, StreamingSegmenter
from monitor.config import Settings
from monitor.errors import AudioDecodeError
from monitor.pipeline import ComplianceSession, Detectors, load_detectors
from monitor.room import RoomContext, Utterance

EXIT_OK = 0
EXIT_UNREADABLE = 1
"""Exit status when at least one file could not be decoded (the others were scanned)."""


def scan_file(
    path: Path,
    *,
    detectors: Detectors,
    transcriber: Transcriber,
    emit: Callable[[Alert], None],
    context: RoomContext | None = None,
    on_transcript: Callable[[Transcript], None] | None = None,
) -> int:
    """Scan one file; call ``emit`` for every alert in file order and return how many.

    ``context`` is the room context to assume (default: none, i.e. no room category);
    ``on_transcript`` sees every committed transcript (benchmarks, debugging).
    Raises :class:`AudioDecodeError` for an unreadable file; alerts for audio
    decoded before a mid-file failure have been emitted by then.
    """
    context = context or RoomContext()
    session = ComplianceSession(detectors, context=context, asr_version=transcriber.model_version)
    segmenter = StreamingSegmenter()
    emitted = 0

    def handle(segments: list[SpeechSegment]) -> None:
        nonlocal emitted
        for segment in segments:
            transcript = transcriber.transcribe(segment, room_category=context.category)
            if transcript is None:
                continue
            if on_transcript is not None:
                on_transcript(transcript)
            for alert in session.feed(Utterance(transcript.text, transcript.start, transcript.end)):
                alert.file = str(path)
                emit(alert)
                emitted += 1

    try:
        for block in iter_decode_file(path):
            handle(segmenter.feed(block))
    except AudioDecodeError:
        handle(segmenter.flush())  # a mid-file failure: still report what was said before it
        raise
    handle(segmenter.flush())
    return emitted


def _utterance_reporter(file: str, on_utterance: Callable[[dict[str, object]], None]) -> Callable[[Transcript], None]:
    from monitor.scan import utterance_record

    def report(transcript: Transcript) -> None:
        on_utterance(utterance_record(transcript.text, file=file, start=transcript.start, end=transcript.end))

    return report


def scan_files(
    paths: list[Path],
    *,
    settings: Settings,
    emit: Callable[[Alert], None],
    stderr: TextIO | None = None,
    room_category: str | None = None,
    on_utterance: Callable[[dict[str, object]], None] | None = None,
) -> int:
    """Scan ``paths`` in order with models loaded once; return the exit status.

    ``emit`` receives each alert as soon as it is found. ``room_category`` (e.g.
    ``jewelry``) is the room context assumed for every file. Each unreadable file gets
    one line ``monitor scan: <path>: <reason>`` on ``stderr`` (default ``sys.stderr``) and
    the status becomes :data:`EXIT_UNREADABLE`; otherwise it is 0, alerts or not.
    ``on_utterance`` receives each committed utterance's record (``--transcript``).
    Model problems raise :class:`~monitor.errors.ModelError` before any file is read.
    """
    err = stderr or sys.stderr
    detectors = load_detectors(settings)
    transcriber = load_transcriber(settings)
    context = RoomContext(category=room_category)
    status = EXIT_OK
    for path in paths:
        try:
            scan_file(
                Path(path),
                detectors=detectors,
                transcriber=transcriber,
                emit=emit,
                context=context,
                on_transcript=None if on_utterance is None else _utterance_reporter(str(path), on_utterance),
            )
        except AudioDecodeError as exc:
            print(f"monitor scan: {exc}", file=err, flush=True)
            status = EXIT_UNREADABLE
    return status
