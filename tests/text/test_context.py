import pytest

from monitor.room import RoomContext
from monitor.taxonomy import Severity
from monitor.text.context import judge_severity
from monitor.text.normalize import normalize_text
from tests.text.conftest import shipped_rules


def _negated(sentence: str, term: str) -> bool:
    text = normalize_text(sentence)
    start = text.index(term)
    return shipped_rules().is_negated(text, start, start + len(term))


@pytest.mark.parametrize(
    "sentence, term",
    [
        ("这个不是足金的", "足金"),
        ("我们并不能保证一定升值", "升值"),
        ("广告法规定不能说最低价", "最低价"),
        ("大家不要相信什么包治百病的说法", "包治百病"),
        ("说它是传家宝是不可能的", "传家宝"),
        ("这个霜不美白", "美白"),
        ("千万别加微信私下交易", "加微信"),
    ],
)
def test_negations_suppress(sentence: str, term: str) -> None:
    assert _negated(sentence, term)


@pytest.mark.parametrize(
    "sentence, term",
    [
        ("这个是足金的", "足金"),
        ("不要犹豫加我微信", "加我微信"),
        ("不用担心这个茶能降血压", "降血压"),
        ("不错吧,绝对升值", "升值"),  # negation in another clause
        ("真的不贵呀这款能祛斑的", "祛斑"),  # negation too far away
    ],
)
def test_affirmative_claims_are_not_negated(sentence: str, term: str) -> None:
    assert not _negated(sentence, term)


def test_claim_cue_window() -> None:
    text = normalize_text("绝对会升值")
    assert shipped_rules().has_claim_cue(text, 3, 5)
    text = normalize_text("会升值的")
    assert not shipped_rules().has_claim_cue(text, 1, 3)


def _severity(default: Severity, *, certified: bool, room_match: bool, repeats: int) -> Severity:
    severity, _ = judge_severity(
        default,
        certified="足金" if certified else None,
        room_category="jewelry" if room_match else None,
        repeats=repeats,
    )
    return severity


def test_severity_adjustments() -> None:
    assert _severity(Severity.WARNING, certified=True, room_match=True, repeats=5) is Severity.INFO
    assert _severity(Severity.WARNING, certified=False, room_match=True, repeats=0) is Severity.VIOLATION
    assert _severity(Severity.INFO, certified=False, room_match=False, repeats=2) is Severity.WARNING
    assert _severity(Severity.VIOLATION, certified=False, room_match=True, repeats=9) is Severity.VIOLATION


def test_severity_explanation_names_what_moved_it() -> None:
    """Moderators see why: each step that moved the severity, and nothing that did not."""
    _, raised = judge_severity(Severity.INFO, certified=None, room_category="jewelry", repeats=2)
    assert [(e.rule, e.effect) for e in raised] == [("room_category", "raised"), ("repetition", "raised")]
    assert "jewelry" in raised[0].detail and "3" in raised[1].detail
    _, capped = judge_severity(Severity.VIOLATION, certified=None, room_category="jewelry", repeats=2)
    assert capped == []
    _, lowered = judge_severity(Severity.WARNING, certified="足金", room_category="jewelry", repeats=2)
    assert [(e.rule, e.effect) for e in lowered] == [("certified", "lowered")]
    assert "足金" in lowered[0].detail


def test_room_context_parses_certified_list() -> None:
    ctx = RoomContext.model_validate({"category": "jewelry", "certified": ["足金"], "product": "手镯"})
    assert ctx.certified == ["足金"]


def test_misheard_cues_count_only_if_they_keep_a_character_of_the_cue() -> None:
    assert _negated("这个步是足金的", "足金")  # 步是 for 不是 keeps 是
    assert not _negated("金子纯度足金", "足金")  # 金子 sounds like 禁止 but keeps nothing of it
