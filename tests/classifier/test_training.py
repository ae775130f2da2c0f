"""Training data hygiene and reproducibility: dev never in train, same inputs give the same bytes."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import jieba
import numpy as np
import pytest
import yaml

from monitor.classifier.calibration import choose_threshold, fit_platt, sigmoid
from monitor.classifier.data import load_dev, load_train
from monitor.classifier.features import Featurizer
from monitor.config import REPO_ROOT
from monitor.taxonomy import CATEGORIES
from monitor.text.normalize import normalize

SAMPLES = REPO_ROOT / "samples" / "classifier"


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "scripts" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_no_dev_utterance_appears_in_training_after_normalization() -> None:
    train = {normalize(t.text).text for t in load_train(SAMPLES / "train.jsonl")}
    dev = load_dev(SAMPLES / "dev")
    assert [d.text for d in dev if normalize(d.text).text in train] == []


def test_dev_set_covers_every_category_and_many_negatives() -> None:
    dev = load_dev(SAMPLES / "dev")
    for category in CATEGORIES:
        assert sum(category in d.labels for d in dev) >= 25, category
    assert sum(not d.labels for d in dev) >= 300


def test_training_set_has_hundreds_per_category_and_thousands_of_negatives() -> None:
    train = load_train(SAMPLES / "train.jsonl")
    for category in CATEGORIES:
        assert sum(category in t.labels for t in train) >= 300, category
    assert sum(not t.labels for t in train) >= 3000
    assert sum(t.kind == "negated" for t in train) >= 1000


def test_generator_reproduces_the_committed_training_set() -> None:
    generator = _script("gen_classifier_data")
    spec = yaml.safe_load((SAMPLES / "templates.yaml").read_text(encoding="utf-8"))
    records = generator.generate(spec)
    written = [json.loads(line) for line in (SAMPLES / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    assert records == written


def test_featurizer_is_stable_and_ignores_words_added_to_global_jieba() -> None:
    text = "家人们这款桑叶茶喝上一个月血管都通了"
    before = Featurizer().features(text)
    # What another module might do to jieba's global state (del_word also adds a
    # process-global HMM force-split word).
    jieba.add_word("桑叶茶喝上")
    jieba.del_word("一个月血管")
    try:
        after = Featurizer().features(text)
    finally:
        jieba.dt.FREQ.pop("桑叶茶喝上", None)
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])
    assert before[0].dtype == np.int64 and before[1].dtype == np.float32
    assert abs(float(np.linalg.norm(before[1])) - 1.0) < 1e-6


def test_platt_fit_is_monotone_and_thresholds_exclude_every_negative() -> None:
    logits = np.array([-4.0, -3.0, -2.5, -1.0, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0])
    positive = np.array([False, False, False, False, False, True, True, True, True, True])
    a, b = fit_platt(logits, positive)
    assert a > 0
    probabilities = sigmoid(a * logits + b)
    threshold = choose_threshold(probabilities, positive, ~positive)
    assert probabilities[~positive].max() < threshold <= probabilities[positive].min()


@pytest.mark.slow
def test_training_rebuilds_the_shipped_model_byte_for_byte(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    trainer = _script("train_classifier")
    trainer.train(SAMPLES, tmp_path)
    for name in ("claim_classifier.onnx", "claim_classifier.json"):
        assert (tmp_path / name).read_bytes() == (REPO_ROOT / "models" / name).read_bytes(), name
