"""When each stretch of a room's stream arrived, to measure alert latency (bounded).

Written by the event loop as frames arrive and read when results are delivered; it
guards itself with a lock. (Recent audio for evidence clips: monitor/stream/ring.py.)
"""

from __future__ import annotations

import threading
import time
from collections import deque

ARRIVAL_LOG_S = 60.0
"""Seconds of stream time whose arrival wall-clock times are remembered (alert latency)."""


class ArrivalLog:
    """When (monotonic wall clock) the audio up to each stream time arrived; bounded by stream time."""

    def __init__(self, *, horizon_s: float = ARRIVAL_LOG_S) -> None:
        self._horizon_s = horizon_s
        self._marks: deque[tuple[float, float]] = deque()  # (stream end of frame, arrival)
        self._forgotten_until_s = float("-inf")  # samples up to here arrived in forgotten frames
        self._lock = threading.Lock()

    def mark(self, stream_end_s: float, arrived: float | None = None) -> None:
        """Record that audio up to ``stream_end_s`` has arrived (now, unless ``arrived`` is given)."""
        with self._lock:
            self._marks.append((stream_end_s, time.monotonic() if arrived is None else arrived))
            while self._marks and self._marks[0][0] < stream_end_s - self._horizon_s:
                self._forgotten_until_s = self._marks.popleft()[0]

    def arrival_of(self, stream_s: float) -> float | None:
        """Monotonic time the sample at ``stream_s`` arrived, or None if it is not remembered."""
        with self._lock:
            if stream_s <= self._forgotten_until_s:
                return None
            found = None
            for end_s, arrived in reversed(self._marks):
                if end_s < stream_s:
                    break
                found = arrived
            return found
