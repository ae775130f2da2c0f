"""Shared fixtures: the shipped claim classifier, loaded once for the module's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.classifier import ClaimClassifier
from monitor.config import REPO_ROOT

MODELS_DIR = REPO_ROOT / "models"


@pytest.fixture(scope="session")
def classifier() -> ClaimClassifier:
    return ClaimClassifier.load(MODELS_DIR)


@pytest.fixture()
def model_copy(tmp_path: Path) -> Path:
    """A writable copy of the shipped model files, to damage in tests."""
    for name in ("claim_classifier.onnx", "claim_classifier.json"):
        (tmp_path / name).write_bytes((MODELS_DIR / name).read_bytes())
    return tmp_path
