"""``monitor scan FILE... --srt DIR``: what was heard in each file as a SubRip (``.srt``) subtitle file.

One cue per utterance (its start and end in seconds of the file, the transcript as text),
written and flushed as each utterance is committed, so an hours-long scan that is stopped
keeps what it had heard. ``DIR/<file stem>.srt``; inputs with the same stem get ``-2``,
``-3``... in the order given.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TextIO


def srt_timestamp(seconds: float) -> str:
    """``HH:MM:SS,mmm`` (SubRip's format) for ``seconds`` >= 0, rounded to the millisecond."""
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d},{millis:03d}"


def subtitle_paths(inputs: Sequence[Path], out_dir: Path) -> list[Path]:
    """The ``.srt`` path for each input, in order: ``out_dir/<stem>.srt``, unique within the run."""
    taken: set[str] = set()
    paths = []
    for source in inputs:
        stem = Path(source).stem or "audio"
        name, number = f"{stem}.srt", 1
        while name in taken:
            number += 1
            name = f"{stem}-{number}.srt"
        taken.add(name)
        paths.append(out_dir / name)
    return paths


class SrtWriter:
    """Writes cues to ``path`` as they come; :meth:`close` when the file is done."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.cues = 0
        self._out: TextIO = path.open("w", encoding="utf-8", newline="\n")

    def add(self, start: float, end: float, text: str) -> None:
        """One cue: ``text`` heard from ``start`` to ``end`` seconds of the file."""
        text = " ".join(text.split())  # a cue's text ends at the first blank line
        if not text:
            return
        self.cues += 1
        end = max(end, start + 0.001)
        self._out.write(f"{self.cues}\n{srt_timestamp(start)} --> {srt_timestamp(end)}\n{text}\n\n")
        self._out.flush()

    def close(self) -> None:
        self._out.close()

    def discard(self) -> None:
        """Close and remove the file (its input could not be read)."""
        self._out.close()
        self.path.unlink(missing_ok=True)
