"""``monitor scan FILE...``: alerts for recorded audio or video files.

Each file is decoded block by block (memory stays bounded on hours-long recordings) and
run through the same :class:`~monitor.stream.RoomPipeline` as a live room, with the same
settings (``MONITOR_STREAM_MIN_SILENCE_MS``, ``MONITOR_STREAM_MAX_UTTERANCE_S``,
``MONITOR_DEDUP_WINDOW_S``): a recording of a show gets the alerts the live server would
have sent. Alerts carry ``file`` (the path as given) and ``start``/``end`` in seconds of
that file.

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
from monitor.asr.transcriber import Transcript, load_transcriber
from monitor.config import Settings
from monitor.errors import AudioDecodeError
from monitor.pipeline import Detectors, load_detectors
from monitor.room import RoomContext
from monitor.scan.output import utterance_record
from monitor.stream import RoomPipeline, StreamOptions
from monitor.stream.pipeline import UtteranceTranscriber

EXIT_OK = 0
EXIT_UNREADABLE = 1
"""Exit status when at least one file could not be decoded (the others were scanned)."""


def scan_file(
    path: Path,
    *,
    detectors: Detectors,
    transcriber: UtteranceTranscriber,
    emit: Callable[[Alert], None],
    context: RoomContext | None = None,
    options: StreamOptions | None = None,
    on_transcript: Callable[[Transcript], None] | None = None,
) -> int:
    """Scan one file; call ``emit`` for every alert in file order and return how many.

    ``context`` is the room context to assume (default: none, i.e. no room category);
    ``options`` how to cut utterances and merge repeats (default: the server's defaults);
    ``on_transcript`` sees every transcript with speech in it (``--transcript``, benchmarks).
    Raises :class:`AudioDecodeError` for an unreadable file; alerts for audio
    decoded before a mid-file failure have been emitted by then.
    """
    pipeline = RoomPipeline(detectors, transcriber, context=context, options=options)
    emitted = 0
    for result in pipeline.run(iter_decode_file(path)):
        if result.transcript is None or not result.heard_speech:
            continue
        if on_transcript is not None:
            on_transcript(result.transcript)
        for alert in result.alerts:
            alert.file = str(path)
            emit(alert)
            emitted += 1
    return emitted


def _utterance_reporter(file: str, on_utterance: Callable[[dict[str, object]], None]) -> Callable[[Transcript], None]:
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
                options=StreamOptions.from_settings(settings),
                on_transcript=None if on_utterance is None else _utterance_reporter(str(path), on_utterance),
            )
        except AudioDecodeError as exc:
            print(f"monitor scan: {exc}", file=err, flush=True)
            status = EXIT_UNREADABLE
    return status
