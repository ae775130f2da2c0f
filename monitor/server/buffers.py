"""Bounded per-room buffers: recent audio for evidence clips, and arrival times for latency.

Both are written by the event loop as frames arrive and read by a worker thread when
an utterance's alerts are archived, so each guards itself with a lock.
"""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np

from monitor.asr.audio import SAMPLE_RATE

RING_BUFFER_S = 30.0
"""Seconds of recent room audio (16 kHz) kept to cut evidence clips."""

ARRIVAL_LOG_S = 60.0
"""Seconds of stream time whose arrival wall-clock times are remembered (alert latency)."""


class AudioRing:
    """The last ``capacity_s`` seconds of a room's 16 kHz audio, addressed by stream time.

    ``origin_s`` is the stream time of the first sample ever appended (a resumed
    stream starts later than 0).
    """

    def __init__(self, *, origin_s: float = 0.0, capacity_s: float = RING_BUFFER_S) -> None:
        self._capacity = int(capacity_s * SAMPLE_RATE)
        self._data = np.zeros(self._capacity, dtype=np.float32)
        self._written = 0  # samples ever appended
        self._origin_s = origin_s
        self._lock = threading.Lock()

    def append(self, samples: np.ndarray) -> None:
        """Add float32 16 kHz samples at the end of the stream."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        with self._lock:
            skipped = max(0, samples.size - self._capacity)  # older than the ring can hold
            self._written += skipped
            kept = samples[skipped:]
            n = kept.size
            at = self._written % self._capacity
            first = min(n, self._capacity - at)
            self._data[at : at + first] = kept[:first]
            self._data[: n - first] = kept[first:]
            self._written += n

    @property
    def end_s(self) -> float:
        """Stream time just past the last sample appended."""
        return self._origin_s + self._written / SAMPLE_RATE

    def clip(self, start_s: float, end_s: float) -> tuple[np.ndarray, float] | None:
        """Samples of ``[start_s, end_s)`` still held (clamped), with the clip's start time; None if none."""
        with self._lock:
            oldest = max(0, self._written - self._capacity)
            begin = max(round((start_s - self._origin_s) * SAMPLE_RATE), oldest)
            end = min(round((end_s - self._origin_s) * SAMPLE_RATE), self._written)
            if end <= begin:
                return None
            idx = np.arange(begin, end) % self._capacity
            return self._data[idx].copy(), self._origin_s + begin / SAMPLE_RATE


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
