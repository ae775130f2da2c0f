"""The scan tests use the ASR tests' media helpers (real encoded files) and settings."""

from __future__ import annotations

import pytest

from tests.asr.conftest import SAMPLES_DIR, synth_room_tone, write_audio

__all__ = ["SAMPLES_DIR", "synth_room_tone", "write_audio"]


@pytest.fixture(scope="session")
def settings():
    from monitor.config import load_settings

    return load_settings()
