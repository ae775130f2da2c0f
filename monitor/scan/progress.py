"""A progress line on standard error for long ``monitor scan`` files, only when it is a terminal.

``scan.wav  [#########...........]  23:10 / 61:05  3.4x  ETA 11:08``: seconds of the file
scanned, its length, the speed in audio seconds per wall second and the time left. Files
of :data:`MIN_DURATION_S` or less get no line; a file whose length is unknown (a live
recording's container) gets the counter without the bar once it passes that length.
Redrawn at most every :data:`REDRAW_INTERVAL_S`; :meth:`ProgressLine.clear` erases it so a
line printed on the same terminal (an alert) is not overwritten.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

MIN_DURATION_S = 60.0
"""Files up to this long finish too soon to need a progress line."""

REDRAW_INTERVAL_S = 0.25
"""Shortest time between two redraws."""

BAR_CELLS = 24


def probe_duration_s(path: Path) -> float | None:
    """The length of ``path``'s media in seconds from its container, or None if it does not say."""
    import av

    try:
        with av.open(str(path), mode="r") as container:
            if container.duration is not None:
                return float(container.duration / av.time_base)
            stream = container.streams.audio[0] if container.streams.audio else None
            if stream is not None and stream.duration is not None and stream.time_base is not None:
                return float(stream.duration * stream.time_base)
    except (av.error.FFmpegError, OSError, IndexError):
        return None  # the scan itself reports an unreadable file
    return None


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ProgressLine:
    """One file's progress on ``stream``; :meth:`update` with the seconds scanned so far."""

    def __init__(
        self, stream: TextIO, label: str, total_s: float | None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.stream = stream
        self.label = label
        self.total_s = total_s
        self.done_s = 0.0
        self._clock = clock
        self._started = clock()
        self._drawn_at: float | None = None
        self._shown = False

    def update(self, done_s: float) -> None:
        """``done_s`` seconds of the file are scanned (never moves back); redraws if due."""
        self.done_s = max(self.done_s, done_s)
        now = self._clock()
        if self._drawn_at is not None and now - self._drawn_at < REDRAW_INTERVAL_S:
            return
        if self.total_s is None and self.done_s <= MIN_DURATION_S:
            return
        self._drawn_at = now
        self.stream.write("\r" + self.render(now) + "\x1b[K")
        self.stream.flush()
        self._shown = True

    def render(self, now: float) -> str:
        """The line's text (without the carriage return)."""
        elapsed = max(now - self._started, 1e-6)
        speed = self.done_s / elapsed
        if self.total_s is None:
            return f"{self.label}  {_clock(self.done_s)} scanned  {speed:.1f}x"
        fraction = min(1.0, self.done_s / self.total_s) if self.total_s > 0 else 1.0
        filled = round(fraction * BAR_CELLS)
        left = (self.total_s - self.done_s) / speed if speed > 0 else 0.0
        return (
            f"{self.label}  [{'#' * filled}{'.' * (BAR_CELLS - filled)}]  "
            f"{_clock(self.done_s)} / {_clock(self.total_s)}  {speed:.1f}x  ETA {_clock(max(0.0, left))}"
        )

    def clear(self) -> None:
        """Erase the line (before something else is printed on the terminal); the next update redraws."""
        if self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False
            self._drawn_at = None


def progress_line(path: Path, stream: TextIO | None) -> ProgressLine | None:
    """A :class:`ProgressLine` for ``path`` on ``stream`` if it is a terminal and the file is long."""
    if stream is None or not stream.isatty():
        return None
    total_s = probe_duration_s(path)
    if total_s is not None and total_s <= MIN_DURATION_S:
        return None
    return ProgressLine(stream, Path(path).name, total_s)
