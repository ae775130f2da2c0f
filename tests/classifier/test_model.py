"""The shipped ONNX claim classifier: faithful to training, loud when broken, quiet on negations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from monitor.classifier import ClaimClassifier
from monitor.errors import ModelError
from monitor.taxonomy import CATEGORIES

pytestmark = pytest.mark.slow


def test_onnx_scores_match_training_time_model(classifier: ClaimClassifier) -> None:
    reference = classifier.metadata["reference_scores"]
    assert len(reference["texts"]) >= 30
    for text, expected in zip(reference["texts"], reference["probabilities"], strict=True):
        got = classifier.scores(text).probabilities
        np.testing.assert_allclose(got, np.array(expected), atol=1e-5, err_msg=text)


@pytest.mark.parametrize("name", ["dev", "heldout"])
def test_no_alert_on_ordinary_spoken_chinese(classifier: ClaimClassifier, name: str) -> None:
    """Issue 17: podcast, meeting and live-room small talk with no claim is never alerted at the
    operating thresholds (dev.txt is calibrated on; heldout.txt never was)."""
    path = Path(__file__).resolve().parents[2] / "samples" / "spoken" / f"{name}.txt"
    lines = [
        line for line in path.read_text(encoding="utf-8").splitlines() if line.strip() and not line.startswith("#")
    ]
    assert [line for line in lines if classifier.detect(line)] == []


def test_predict_gives_a_probability_per_category(classifier: ClaimClassifier) -> None:
    scores = classifier.predict("这个茶喝了以后血管里的垃圾都清干净了")
    assert list(scores) == list(CATEGORIES)
    assert all(0.0 <= p <= 1.0 for p in scores.values())
    assert max(scores, key=scores.__getitem__) == "medical_claim"


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("家人们这款桑叶茶喝上一个月血管都通了", "medical_claim"),
        ("这个面霜抹上去,脸上的黄褐斑一个礼拜就淡了", "cosmetic_efficacy"),
        ("想要的宝宝别在链接拍,下播以后直接转账给我", "private_transaction"),
        ("这串手串是师父念经加持过的,戴上以后小人都躲着你走", "superstition"),
        ("商场里这件大衣卖一千九,今天直播间只要一百九", "false_price"),
    ],
)
def test_detects_claims_without_lexicon_words(classifier: ClaimClassifier, text: str, category: str) -> None:
    found = classifier.detect(text)
    assert found and found[0][0] == category, found


@pytest.mark.parametrize(
    "text",
    [
        "这个茶不能代替药物,生病了请去医院",
        "我们不承诺这个手镯能升值,喜欢再买",
        "这个面霜就是保湿的,没办法让你变白",
        "这只镯子是处理过的,证书上写着呢",
        "所有订单都在平台上完成,我们不收私人转账",
        "这个摆件只是装饰品,不能给你带来财运",
        "价格就是链接里这个价,没有什么原价现价",
        "我们没有任何官方背书,就是个普通牌子",
        "这个金吊坠是十八K的,不是九九九九",
        "别听别人说戴了能发财,没有的事",
    ],
)
def test_negated_claims_are_not_flagged(classifier: ClaimClassifier, text: str) -> None:
    assert classifier.detect(text) == []


def test_detect_is_sorted_and_respects_thresholds(classifier: ClaimClassifier) -> None:
    text = "这块玉是矿里挖出来的没做过任何处理,放十年价格翻三倍"
    found = classifier.detect(text)
    assert [p for _, p in found] == sorted((p for _, p in found), reverse=True)
    scores = classifier.predict(text)
    assert {c for c, _ in found} == {c for c, p in scores.items() if p >= classifier.thresholds[c]}


def test_empty_text_is_scored_without_error(classifier: ClaimClassifier) -> None:
    assert classifier.detect("") == []
    assert classifier.detect("嗯嗯,啊") == []


def test_version_is_the_metadata_content_hash(classifier: ClaimClassifier) -> None:
    assert classifier.version.startswith("clf-") and len(classifier.version) == 16
    assert set(classifier.thresholds) == set(CATEGORIES)


def test_missing_model_file_is_a_clear_model_error(model_copy: Path) -> None:
    (model_copy / "claim_classifier.onnx").unlink()
    with pytest.raises(ModelError, match=r"claim_classifier\.onnx: claim classifier model cannot be read"):
        ClaimClassifier.load(model_copy)


def test_missing_metadata_is_a_clear_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"claim_classifier\.json: claim classifier metadata is missing"):
        ClaimClassifier.load(tmp_path)


def test_corrupt_model_file_fails_the_checksum(model_copy: Path) -> None:
    path = model_copy / "claim_classifier.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"does not match claim_classifier\.json.*corrupt or was replaced"):
        ClaimClassifier.load(model_copy)


def test_unloadable_graph_is_a_clear_model_error(model_copy: Path) -> None:
    # A file whose checksum matches the metadata but which is not an ONNX graph.
    import hashlib

    garbage = b"not an onnx graph"
    (model_copy / "claim_classifier.onnx").write_bytes(garbage)
    metadata_path = model_copy / "claim_classifier.json"
    metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
    metadata["onnx_sha256"] = hashlib.sha256(garbage).hexdigest()
    metadata_path.write_text(json.dumps(metadata), encoding="utf-8")
    with pytest.raises(ModelError, match="onnxruntime cannot load the claim classifier"):
        ClaimClassifier.load(model_copy)


def test_garbled_metadata_is_a_clear_model_error(model_copy: Path) -> None:
    (model_copy / "claim_classifier.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelError, match="metadata is unreadable"):
        ClaimClassifier.load(model_copy)
