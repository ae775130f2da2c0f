"""Shared by the text tests: the engine over the shipped lexicons (loaded once) and what it raised."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.text.engine import TextEngine

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def engine() -> TextEngine:
    return TextEngine.load(REPO / "lexicons")


def rules_of(engine: TextEngine, text: str) -> set[str]:
    """The rule ids of the alerts ``text`` raises."""
    return {alert.rule_id for alert in engine.analyze(text)}


def categories_of(engine: TextEngine, text: str) -> set[str]:
    """The categories of the alerts ``text`` raises."""
    return {alert.category for alert in engine.analyze(text)}
