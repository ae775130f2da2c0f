"""Shared fixtures: the repository's paths and a small lexicon for exact engine tests."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURE_LEXICONS = REPO / "tests" / "text" / "fixtures" / "lexicons"


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def fixture_engine():
    from monitor.text.engine import TextEngine

    return TextEngine.load(FIXTURE_LEXICONS)
