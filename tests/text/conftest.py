"""Shared by the text tests: the engine over the shipped lexicons (loaded once) and what it raised."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from monitor.text.context import ContextRules
from monitor.text.engine import TextEngine
from monitor.text.lexicon import load_lexicons

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def engine() -> TextEngine:
    return TextEngine.load(REPO / "lexicons")


@cache
def shipped_rules() -> ContextRules:
    """The context rules of the shipped lexicons (``lexicons/_context.yaml``), loaded once."""
    context = load_lexicons(REPO / "lexicons").context
    assert context is not None
    return ContextRules(context)


def rules_of(engine: TextEngine, text: str) -> set[str]:
    """The rule ids of the alerts ``text`` raises."""
    return {alert.rule_id for alert in engine.analyze(text)}


def categories_of(engine: TextEngine, text: str) -> set[str]:
    """The categories of the alerts ``text`` raises."""
    return {alert.category for alert in engine.analyze(text)}
