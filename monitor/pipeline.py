"""From committed utterances to alerts: the detection stages shared by every entry point.

``scan --text``, ``scan FILE`` and ``serve`` all do the same thing per room (or file):
build one :class:`ComplianceSession` on the process-wide :class:`Detectors` and
``feed`` it committed utterances in stream order::

    detectors = load_detectors(settings)              # once per process (cached)
    session = ComplianceSession(detectors, room_id="r1", anchor_id="a1", context=ctx)
    alerts = session.feed(Utterance("这是千足金的", start=3.2, end=5.0))

The session holds the per-room state (repetition counts); detectors are shared and
read-only, so sessions of different rooms never interfere.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from monitor.alerts import Alert
from monitor.config import Settings
from monitor.room import RoomContext, Utterance
from monitor.text.engine import RoomState, TextEngine


@dataclass(frozen=True)
class Detectors:
    """The shared, read-only detection resources of one process."""

    text: TextEngine

    @property
    def lexicon_version(self) -> str:
        return self.text.lexicon.version


@lru_cache(maxsize=4)
def _load_detectors(lexicon_dir: str) -> Detectors:
    from pathlib import Path

    return Detectors(text=TextEngine.load(Path(lexicon_dir)))


def load_detectors(settings: Settings) -> Detectors:
    """The detectors for ``settings``, loaded once per process and warmed up."""
    return _load_detectors(str(settings.lexicon_dir))


class ComplianceSession:
    """Per-room (or per-file) detection: ``feed(utterance) -> list[Alert]``."""

    def __init__(
        self,
        detectors: Detectors,
        *,
        room_id: str | None = None,
        anchor_id: str | None = None,
        context: RoomContext | None = None,
    ) -> None:
        self.detectors = detectors
        self.room_id = room_id
        self.anchor_id = anchor_id
        self.context = context or RoomContext()
        self.state = RoomState()

    def feed(self, utterance: Utterance) -> list[Alert]:
        """Alerts for one committed utterance, in the order their phrases appear."""
        alerts = self.detectors.text.analyze(utterance.text, self.context, self.state)
        for alert in alerts:
            alert.room_id = self.room_id
            alert.anchor_id = self.anchor_id
            alert.start = utterance.start
            alert.end = utterance.end
        return alerts
