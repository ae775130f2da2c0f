"""Recent room audio addressed by stream time, to cut evidence clips around an utterance.

Written by the thread that feeds audio and read by the one that processes utterances, so
it guards itself with a lock. Bounded: only the last ``capacity_s`` seconds are held.
"""

from __future__ import annotations

import threading

import numpy as np

from monitor.asr.audio import SAMPLE_RATE

RING_BUFFER_S = 30.0
"""Seconds of recent room audio (16 kHz) kept to cut evidence clips."""


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
