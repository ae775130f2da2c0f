"""``monitor scan FILE...``: alerts for recorded audio or video files.

Each file is decoded block by block (memory stays bounded on hours-long recordings) and
run through the same :class:`~monitor.stream.RoomPipeline` as a live room, deduplicated the
same way (``MONITOR_DEDUP_WINDOW_S``). Utterances are cut for recordings by default (longer
pauses and utterances: :meth:`~monitor.stream.StreamOptions.for_recordings`); with
``live_cut`` (``monitor scan --live-cut``) exactly as the live server cuts them
(``MONITOR_STREAM_*``), so a recording of a show gets the alerts the live room got. Alerts
carry ``file`` (the path as given) and ``start``/``end`` in seconds of that file.

The models load once for all files. An unreadable file is reported on stderr in
one line (``monitor scan: <path>: <reason>``) and the remaining files are still scanned.
With ``on_utterance`` (``monitor scan --transcript``) every committed utterance is also
reported, as ``{"type": "utterance", "file", "start", "end", "text"}``, before its alerts.
With ``srt_dir`` (``--srt DIR``) each file's utterances are also written to a ``.srt``
subtitle file (monitor/scan/subtitles.py); with ``progress`` (standard error when it is a
terminal) files longer than a minute show a progress line (monitor/scan/progress.py).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

import numpy as np

from monitor.alerts import Alert
from monitor.asr.audio import SAMPLE_RATE, iter_decode_file
from monitor.asr.transcriber import Transcript, load_transcriber
from monitor.config import Settings
from monitor.detection import Detectors, load_detectors
from monitor.errors import AudioDecodeError
from monitor.room import RoomContext
from monitor.scan.output import utterance_record
from monitor.scan.progress import ProgressLine, progress_line
from monitor.scan.subtitles import SrtWriter, subtitle_paths
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
    on_progress: Callable[[float], None] | None = None,
) -> int:
    """Scan one file; call ``emit`` for every alert in file order and return how many.

    ``context`` is the room context to assume (default: none, i.e. no room category);
    ``options`` how to cut utterances and merge repeats (default: the recording cut);
    ``on_transcript`` sees every transcript with speech in it (``--transcript``, benchmarks);
    ``on_progress`` the seconds of the file scanned so far, after each decoded block.
    Raises :class:`AudioDecodeError` for an unreadable file; alerts for audio
    decoded before a mid-file failure have been emitted by then.
    """
    pipeline = RoomPipeline(detectors, transcriber, context=context, options=options or StreamOptions.for_recordings())
    emitted = 0
    blocks = iter_decode_file(path)
    for result in pipeline.run(blocks if on_progress is None else _counted(blocks, on_progress)):
        if result.transcript is None or not result.heard_speech:
            continue
        if on_transcript is not None:
            on_transcript(result.transcript)
        for alert in result.alerts:
            alert.file = str(path)
            emit(alert)
            emitted += 1
    return emitted


def _counted(blocks: Iterator[np.ndarray], on_progress: Callable[[float], None]) -> Iterator[np.ndarray]:
    """``blocks`` unchanged; reports the seconds before each block once the pipeline asks for it."""
    samples = 0
    for block in blocks:
        on_progress(samples / SAMPLE_RATE)
        yield block
        samples += block.size
    on_progress(samples / SAMPLE_RATE)


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
    srt_dir: Path | None = None,
    progress: TextIO | None = None,
    live_cut: bool = False,
) -> int:
    """Scan ``paths`` in order with models loaded once; return the exit status.

    ``emit`` receives each alert as soon as it is found. ``room_category`` (e.g.
    ``jewelry``) is the room context assumed for every file. Each unreadable file gets
    one line ``monitor scan: <path>: <reason>`` on ``stderr`` (default ``sys.stderr``) and
    the status becomes :data:`EXIT_UNREADABLE`; otherwise it is 0, alerts or not.
    ``on_utterance`` receives each committed utterance's record (``--transcript``).
    ``srt_dir`` (an existing folder) gets one ``.srt`` per readable file (``--srt``);
    ``progress`` is where a long file's progress line goes, if it is a terminal.
    Model problems raise :class:`~monitor.errors.ModelError` before any file is read.
    """
    err = stderr or sys.stderr
    detectors = load_detectors(settings)
    transcriber = load_transcriber(settings, lexicon=detectors.lexicon)  # lexicons parsed once
    context = RoomContext(category=room_category)
    # recordings are cut for accuracy unless asked to cut exactly like the live server
    options = StreamOptions.from_settings(settings) if live_cut else StreamOptions.for_recordings(settings)
    status = EXIT_OK
    srt_paths = subtitle_paths(paths, srt_dir) if srt_dir is not None else []
    for index, path in enumerate(paths):
        subtitles = SrtWriter(srt_paths[index]) if srt_dir is not None else None
        bar = progress_line(Path(path), progress)
        try:
            scan_file(
                Path(path),
                detectors=detectors,
                transcriber=transcriber,
                emit=_clearing(bar, emit),
                context=context,
                options=options,
                on_transcript=_transcript_sinks(str(path), on_utterance, subtitles, bar),
                on_progress=None if bar is None else bar.update,
            )
        except AudioDecodeError as exc:
            if bar is not None:
                bar.clear()
            print(f"monitor scan: {exc}", file=err, flush=True)
            status = EXIT_UNREADABLE
            if subtitles is not None and subtitles.cues == 0:
                subtitles.discard()  # nothing was read: no subtitle file for it
        finally:
            if bar is not None:
                bar.clear()
            if subtitles is not None:
                subtitles.close()
    return status


def _clearing(bar: ProgressLine | None, emit: Callable[[Alert], None]) -> Callable[[Alert], None]:
    """``emit`` that first erases the progress line, so an alert printed on the terminal stays whole."""
    if bar is None:
        return emit

    def emit_clear(alert: Alert) -> None:
        bar.clear()
        emit(alert)

    return emit_clear


def _transcript_sinks(
    file: str,
    on_utterance: Callable[[dict[str, object]], None] | None,
    subtitles: SrtWriter | None,
    bar: ProgressLine | None,
) -> Callable[[Transcript], None] | None:
    """One ``on_transcript`` for the ``--transcript`` records, the subtitle file and the progress line."""
    report = None if on_utterance is None else _utterance_reporter(file, on_utterance)
    if report is None and subtitles is None and bar is None:
        return None

    def sink(transcript: Transcript) -> None:
        if report is not None:
            if bar is not None:
                bar.clear()
            report(transcript)
        if subtitles is not None:
            subtitles.add(transcript.start, transcript.end, transcript.text)
        if bar is not None:
            bar.update(transcript.end)

    return sink
