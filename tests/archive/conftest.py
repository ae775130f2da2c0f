"""Fixtures for the evidence archive tests: alerts, clips, a controllable clock, a filled archive."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from monitor.alerts import Alert
from monitor.archive import EvidenceArchive

SAMPLE_RATE = 16000


def make_alert(number: int, *, room: str = "r1", anchor: str = "a1", category: str = "absolute_claim") -> Alert:
    return Alert(
        room_id=room,
        anchor_id=anchor,
        category=category,
        severity="warning",
        rule_id=f"rule.{category}",
        matched="全网最低价",
        source="lexicon",
        confidence=0.93,
        text=f"这款是全网最低价 第{number}次",
        start=10.0 + number,
        end=12.5 + number,
        reminder="请勿使用“全网最低价”等绝对化用语",
        regulation="广告法 art. 9(3)",
        lexicon_version="lex-2024.1",
        model_version="clf-0.3",
    )


def make_clip(seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    """A speech-like clip: a few tones with noise, float32 in [-1, 1]."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    tone = 0.3 * np.sin(2 * np.pi * (180 + 40 * seed % 200) * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return (tone + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


class Clock:
    """A settable UTC clock that advances one second per reading."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2024, 3, 1, 8, 0, tzinfo=UTC))


@pytest.fixture
def filled(tmp_path: Path, clock: Clock) -> tuple[Path, list[str]]:
    """An archive with 5 alerts (2 rooms, with clips), one session, one hold; returns (dir, alert ids)."""
    data_dir = tmp_path / "archive"
    ids: list[str] = []
    with EvidenceArchive.open(data_dir, clock=clock) as archive:
        for number in range(5):
            room = "r1" if number < 3 else "r2"
            alert = make_alert(number, room=room)
            ids.append(
                archive.record_alert(
                    alert, clip=make_clip(1.0, seed=number), clip_start=9.0 + number, transcript=alert.text
                )
            )
        archive.record_session(
            session_id="s1", room_id="r1", anchor_id="a1",
            transcript=[{"start": 0.0, "end": 2.0, "text": "大家好"}],
            started_at=datetime(2024, 3, 1, 7, 0, tzinfo=UTC), ended_at=datetime(2024, 3, 1, 9, 0, tzinfo=UTC),
        )
        archive.hold(ids[1], reason="case 2024-17")
    return data_dir, ids
