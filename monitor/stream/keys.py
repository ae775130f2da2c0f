"""Stable names for a room's utterances: the same cut of the same stream gets the same key."""

from __future__ import annotations

from monitor.asr.audio import SAMPLE_RATE
from monitor.asr.vad import SpeechSegment


def segment_key(segment: SpeechSegment) -> str:
    """``<first sample>-<end sample>`` of the segment in stream samples (16 kHz)."""
    return f"{round(segment.start * SAMPLE_RATE)}-{round(segment.end * SAMPLE_RATE)}"
