"""``monitor scan``: the pipeline run over recorded input instead of a live room.

- ``command``: the command line (``monitor scan --text`` / ``monitor scan FILE...``).
- ``files``: audio or video files through :class:`~monitor.stream.RoomPipeline`.
- ``text``: transcript lines through the detection stages.
- ``output``: alerts and utterance records as JSON lines or readable lines.
- ``subtitles``: ``--srt DIR``, one SubRip file per audio file (what was heard, with times).
- ``progress``: a progress line on standard error for long files, only when it is a terminal.
"""

from monitor.scan.command import register, run
from monitor.scan.files import EXIT_OK, EXIT_UNREADABLE, scan_file, scan_files
from monitor.scan.output import format_alert, make_emitter, make_transcript_emitter, utterance_record
from monitor.scan.text import scan_text_lines

__all__ = [
    "EXIT_OK",
    "EXIT_UNREADABLE",
    "format_alert",
    "make_emitter",
    "make_transcript_emitter",
    "register",
    "run",
    "scan_file",
    "scan_files",
    "scan_text_lines",
    "utterance_record",
]
