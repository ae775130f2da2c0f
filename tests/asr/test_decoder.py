"""The decoder adapter's pure parts: the encoder window (no model needed)."""

from __future__ import annotations

from monitor.asr.decoder import encoder_frames


def test_encoder_frames_follow_the_window() -> None:
    assert encoder_frames(250, 30.0) == 3000  # Whisper's own 30 s window
    assert encoder_frames(250, 15.0) == 1500  # at least the window
    assert encoder_frames(1450, 15.0) == 1550  # a long utterance keeps 1 s of padding after it
    assert encoder_frames(1451, 15.0) == 1552  # even: the encoder halves it
    assert encoder_frames(2990, 15.0) == 3000  # never past 30 s
