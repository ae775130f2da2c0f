"""The alerts stage's dedup memory, with exact stream times (no clock, no sockets)."""

from __future__ import annotations

import pytest

from monitor.alerts import Alert, Source
from monitor.stream.dedup import AlertDedup


def alert(rule_id: str, start: float, severity: str = "warning") -> Alert:
    return Alert(
        category="absolute_claim", severity=severity, rule_id=rule_id, matched="全网最低价", source=Source.LEXICON,
        confidence=0.9, text="全网最低价", start=start, end=start + 1.0, reminder="r", regulation="广告法",
    )  # fmt: skip


def test_the_same_rule_within_the_window_is_held_back() -> None:
    dedup = AlertDedup(window_s=20.0)
    first, second = alert("ABS-001", 10.0), alert("ABS-001", 29.9)
    assert dedup.admit([first]) == ([first], [])
    assert dedup.admit([second]) == ([], [second])


def test_the_window_counts_from_the_last_reminder_sent() -> None:
    dedup = AlertDedup(window_s=20.0)
    dedup.admit([alert("ABS-001", 10.0)])
    dedup.admit([alert("ABS-001", 25.0)])  # held back: does not extend the window
    later = alert("ABS-001", 30.0)
    assert dedup.admit([later]) == ([later], [])


def test_a_worse_repeat_goes_through_and_other_rules_are_independent() -> None:
    dedup = AlertDedup(window_s=20.0)
    dedup.admit([alert("ABS-001", 1.0)])
    worse, other = alert("ABS-001", 2.0, "violation"), alert("MED-001", 2.0)
    assert dedup.admit([worse, other]) == ([worse, other], [])
    same_again = alert("ABS-001", 3.0, "violation")
    assert dedup.admit([same_again]) == ([], [same_again])


def test_window_zero_sends_every_hit() -> None:
    dedup = AlertDedup(window_s=0.0)
    hits = [alert("ABS-001", 1.0), alert("ABS-001", 1.0)]
    assert dedup.admit(hits) == (hits, [])


def test_memory_is_bounded_forgetting_the_oldest_rule() -> None:
    dedup = AlertDedup(window_s=100.0, max_rules=2)
    dedup.admit([alert("R1", 1.0), alert("R2", 2.0), alert("R3", 3.0)])
    again = alert("R1", 4.0)
    assert dedup.admit([again]) == ([again], [])  # R1 was forgotten


def test_negative_window_is_refused() -> None:
    with pytest.raises(ValueError, match="dedup window must be >= 0 s, got -1"):
        AlertDedup(window_s=-1)
