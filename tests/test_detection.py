"""The detection pipeline as every entry point uses it: lexicons, then the classifier."""

import shutil

import pytest

from monitor.config import load_settings
from monitor.detection import ComplianceSession, load_detectors
from monitor.errors import ModelError
from monitor.room import RoomContext, Utterance


@pytest.fixture(scope="module")
def detectors():
    return load_detectors(load_settings())


def _alerts(detectors, text, **session):
    return ComplianceSession(detectors, **session).feed(Utterance(text, 1.0, 2.5))


def test_claim_without_a_lexicon_word_is_caught_by_the_classifier(detectors) -> None:
    (alert,) = _alerts(detectors, "这个茶能把血管里的垃圾清干净", asr_version="whisper-test")
    assert (alert.category, alert.source, alert.rule_id) == ("medical_claim", "classifier", "CLF-MED")
    assert 0.5 < alert.confidence <= 1.0
    assert alert.model_version == f"whisper-test+{detectors.classifier.version}"
    assert alert.reminder and alert.regulation
    assert (alert.start, alert.end) == (1.0, 2.5)


def test_no_classifier_alert_beside_a_lexicon_alert_of_the_same_category(detectors) -> None:
    alerts = _alerts(detectors, "这个茶能把血管里的垃圾清干净，降血压")
    assert [(a.category, a.source) for a in alerts] == [("medical_claim", "lexicon")]


@pytest.mark.parametrize(
    "text", ["我们不能保证这个茶能把血管里的垃圾清干净", "别信什么喝茶能把血管垃圾清干净的说法"]
)
def test_denied_claims_are_not_flagged(detectors, text) -> None:
    assert _alerts(detectors, text) == []


def test_room_category_raises_classifier_severity_and_certification_lowers_it(detectors) -> None:
    text = "这款表戴几年再卖出去还能多卖钱"
    plain = _alerts(detectors, text)[0]
    raised = _alerts(detectors, text, context=RoomContext(category="collectibles"))[0]
    certified = _alerts(
        detectors, text, context=RoomContext(category="collectibles", certified=["collectible_investment"])
    )[0]
    assert (plain.severity, raised.severity, certified.severity) == ("warning", "violation", "info")
    # Moderators see why (Alert.explanation), the same way as for lexicon alerts.
    why = [[(e.rule, e.effect) for e in a.explanation] for a in (plain, raised, certified)]
    assert why == [[], [("room_category", "raised")], [("certified", "lowered")]]
    assert "collectible_investment" in certified.explanation[0].detail


def test_room_and_anchor_ids_are_stamped(detectors) -> None:
    (alert,) = _alerts(detectors, "加我微信", room_id="r9", anchor_id="a3")
    assert (alert.room_id, alert.anchor_id) == ("r9", "a3")


def test_missing_classifier_model_is_a_clear_error_at_start(tmp_path, repo) -> None:
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(repo / "models" / "claim_classifier.json", models)
    with pytest.raises(ModelError, match=r"claim_classifier\.onnx"):
        load_detectors(load_settings(models_dir=models))
