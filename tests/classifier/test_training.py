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
from monitor.classifier.data import load_labelled, load_train
from monitor.classifier.features import Featurizer
from monitor.config import REPO_ROOT
from monitor.errors import InputError
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


def test_held_out_sets_share_no_utterance_with_training_or_each_other() -> None:
    trained = {normalize(t.text).text for t in load_train(SAMPLES / "train.jsonl")}
    trained |= {normalize(t.text).text for t in load_labelled(SAMPLES / "handwritten")}
    dev = {normalize(d.text).text for d in load_labelled(SAMPLES / "dev")}
    test = {normalize(d.text).text for d in load_labelled(SAMPLES / "test")}
    assert dev & trained == set()
    assert test & trained == set()
    assert test & dev == set()


@pytest.mark.parametrize(
    ("folder", "claims", "negatives"), [("dev", 25, 300), ("test", 40, 400), ("handwritten", 100, 900)]
)
def test_hand_written_sets_cover_every_category_and_many_negatives(folder: str, claims: int, negatives: int) -> None:
    examples = load_labelled(SAMPLES / folder)
    for category in CATEGORIES:
        assert sum(category in e.labels for e in examples) >= claims, category
    assert sum(not e.labels for e in examples) >= negatives


def test_labelled_folder_reads_prefixed_files_and_names_what_is_wrong(tmp_path: Path) -> None:
    for category in CATEGORIES:
        (tmp_path / f"{category}.txt").write_text("# comment\n一句话\n", encoding="utf-8")
    (tmp_path / "spoken_medical_claim.txt").write_text("喝了血管就通了\t absolute_claim\n", encoding="utf-8")
    (tmp_path / "negatives_a.txt").write_text("今天包邮\n", encoding="utf-8")
    examples = load_labelled(tmp_path)
    assert len(examples) == len(CATEGORIES) + 2
    spoken = next(e for e in examples if e.source.endswith("spoken_medical_claim.txt"))
    assert spoken.labels == {"medical_claim", "absolute_claim"} and spoken.line == 1
    assert examples[-1].labels == frozenset() and examples[-1].text == "今天包邮"

    (tmp_path / "notes.txt").write_text("x\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"notes\.txt: file name names no category"):
        load_labelled(tmp_path)
    (tmp_path / "notes.txt").unlink()
    (tmp_path / "superstition.txt").unlink()
    with pytest.raises(InputError, match=r"no claim file for categories \['superstition'\]"):
        load_labelled(tmp_path)
    (tmp_path / "superstition.txt").write_text("开过光\tno_such_category\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"superstition\.txt:1: unknown categories"):
        load_labelled(tmp_path)


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


def test_threshold_may_admit_the_allowed_share_of_negatives_only() -> None:
    # 998 ordinary negatives up to 0.8 and two outliers (a denied claim, say) at 0.96 and 0.98.
    negatives = np.concatenate([np.linspace(0.0, 0.8, 998), [0.96, 0.98]])
    positives = np.array([0.5, 0.85, 0.95, 0.97, 0.99])
    probabilities = np.concatenate([negatives, positives])
    positive = np.arange(len(probabilities)) >= len(negatives)
    strict = choose_threshold(probabilities, positive, ~positive, min_precision=0.5)
    assert 0.98 < strict <= 0.99  # the outliers set it: one claim of five is caught
    lenient = choose_threshold(probabilities, positive, ~positive, min_precision=0.5, max_false_rate=0.002)
    assert (probabilities[~positive] >= lenient).sum() == 2  # 0.2% of 1,000
    assert (probabilities[positive] >= lenient).sum() == 4
    tighter = choose_threshold(probabilities, positive, ~positive, min_precision=0.9, max_false_rate=0.002)
    assert tighter > 0.98  # precision still rules: 4 of 6 is below 0.9


def test_strict_negatives_are_never_admitted_whatever_the_false_rate() -> None:
    """Issue 17: ordinary spoken Chinese (samples/spoken/dev.txt) gets no alert at the operating
    threshold, even where the calibration negatives may admit 0.2 %."""
    negatives = np.concatenate([np.linspace(0.0, 0.8, 998), [0.96, 0.98]])
    positives = np.array([0.5, 0.85, 0.95, 0.97, 0.99])
    probabilities = np.concatenate([negatives, positives])
    positive = np.arange(len(probabilities)) >= len(negatives)
    lenient = choose_threshold(probabilities, positive, ~positive, min_precision=0.5, max_false_rate=0.002)
    spoken = np.array([0.3, 0.9])  # one spoken line scores above the lenient threshold
    assert lenient <= 0.9
    calibrated = choose_threshold(
        probabilities, positive, ~positive, min_precision=0.5, max_false_rate=0.002, strict_negatives=spoken
    )
    assert 0.9 < calibrated <= 0.95  # above the spoken line, still admitting the claims above it
    assert (probabilities[positive] >= calibrated).sum() == 3


def test_spoken_negatives_are_calibrated_on_and_measured_apart() -> None:
    """The trainer reads samples/spoken/train.txt (training) and dev.txt (strict negatives);
    heldout.txt is read by no training code and shares no line with the others."""
    spoken = REPO_ROOT / "samples" / "spoken"
    sets = {
        name: {
            line
            for line in (spoken / f"{name}.txt").read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")
        }
        for name in ("train", "dev", "heldout")
    }
    assert all(len(lines) >= 70 for lines in sets.values())
    assert not sets["train"] & sets["dev"] and not sets["train"] & sets["heldout"] and not sets["dev"] & sets["heldout"]
    source = (REPO_ROOT / "scripts" / "train_classifier.py").read_text(encoding="utf-8")
    assert '"train.txt"' in source and '"dev.txt"' in source and "heldout" not in source


def _numbers_close(rebuilt: object, shipped: object, where: str) -> None:
    """Equal structure and non-numbers; numbers equal to float32 rounding."""
    if isinstance(shipped, dict):
        assert isinstance(rebuilt, dict) and rebuilt.keys() == shipped.keys(), where
        for key in shipped:
            _numbers_close(rebuilt[key], shipped[key], f"{where}/{key}")
    elif isinstance(shipped, list):
        assert isinstance(rebuilt, list) and len(rebuilt) == len(shipped), where
        for i, (a, b) in enumerate(zip(rebuilt, shipped, strict=True)):
            _numbers_close(a, b, f"{where}[{i}]")
    elif isinstance(shipped, float):
        assert rebuilt == pytest.approx(shipped, rel=1e-5, abs=1e-6), where
    else:
        assert rebuilt == shipped, where


@pytest.mark.slow
def test_training_rebuilds_the_shipped_model(tmp_path: Path) -> None:
    # Same data, settings and thresholds; weights equal to float32 rounding. Byte identity
    # holds only on one CPU: BLAS kernels round differently elsewhere (seen: weights 2e-7
    # apart, calibration 1e-8, on another machine of the same kind).
    pytest.importorskip("sklearn")
    import onnx
    from onnx import numpy_helper

    trainer = _script("train_classifier")
    trainer.train(SAMPLES, tmp_path)
    rebuilt = json.loads((tmp_path / "claim_classifier.json").read_text(encoding="utf-8"))
    shipped = json.loads((REPO_ROOT / "models" / "claim_classifier.json").read_text(encoding="utf-8"))
    for derived in ("version", "onnx_sha256"):  # hashes of the bytes compared below
        rebuilt.pop(derived), shipped.pop(derived)
    assert rebuilt["thresholds"] == shipped["thresholds"]
    _numbers_close(rebuilt, shipped, "claim_classifier.json")
    new_graph = onnx.load(str(tmp_path / "claim_classifier.onnx")).graph
    old_graph = onnx.load(str(REPO_ROOT / "models" / "claim_classifier.onnx")).graph
    assert [(n.op_type, list(n.input), list(n.output)) for n in new_graph.node] == [
        (n.op_type, list(n.input), list(n.output)) for n in old_graph.node
    ]
    assert [i.name for i in new_graph.initializer] == [i.name for i in old_graph.initializer]
    for new, old in zip(new_graph.initializer, old_graph.initializer, strict=True):
        np.testing.assert_allclose(numpy_helper.to_array(new), numpy_helper.to_array(old), rtol=1e-4, atol=1e-5)
