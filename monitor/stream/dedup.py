"""The alerts stage's memory: one reminder per rule per window, unless the claim got worse.

An anchor who repeats a claim within ``window_s`` of stream time gets one reminder, not
one per sentence; moderators see one alert. A repeat at a higher severity (the text
engine raises a rule that keeps firing) goes through. Plain object, no clock: times are
the alerts' stream seconds.
"""

from __future__ import annotations

from monitor.alerts import Alert
from monitor.taxonomy import Severity

MAX_DEDUP_RULES = 512
"""Rules remembered per room (the least recently fired are forgotten first)."""


class AlertDedup:
    """``admit(alerts) -> (to_send, held_back)`` for one room, in stream order."""

    def __init__(self, *, window_s: float, max_rules: int = MAX_DEDUP_RULES) -> None:
        if window_s < 0:
            raise ValueError(f"dedup window must be >= 0 s, got {window_s}")
        self.window_s = window_s
        self._max_rules = max_rules
        self._last: dict[str, tuple[float, int]] = {}  # rule_id -> (stream time sent, severity rank)

    def admit(self, alerts: list[Alert]) -> tuple[list[Alert], list[Alert]]:
        """Split ``alerts`` (one utterance's) into those to send and the repeats to hold back."""
        sent: list[Alert] = []
        held: list[Alert] = []
        for alert in alerts:
            (sent if self._first_in_window(alert) else held).append(alert)
        return sent, held

    def state(self) -> dict[str, list[float]]:
        """What the dedup remembers (JSON-able), to continue the room in another process."""
        return {rule: [when, rank] for rule, (when, rank) in self._last.items()}

    def restore(self, state: dict[str, list[float]]) -> None:
        self._last = {rule: (float(when), int(rank)) for rule, (when, rank) in state.items()}

    def _first_in_window(self, alert: Alert) -> bool:
        when = alert.start if alert.start is not None else 0.0
        rank = Severity(alert.severity).rank
        previous = self._last.get(alert.rule_id)
        if previous is not None and when - previous[0] < self.window_s and rank <= previous[1]:
            return False
        self._last[alert.rule_id] = (when, rank)
        if len(self._last) > self._max_rules:
            oldest = min(self._last, key=lambda rule: self._last[rule][0])
            del self._last[oldest]
        return True
