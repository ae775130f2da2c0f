"""Why an alert was raised (``Alert.explanation``) and why a hit was not (``TextEngine.explain``)."""

import pytest

from monitor.room import RoomContext
from monitor.text.context import DISOWNING_RULES, NEGATION_RULES
from monitor.text.engine import RoomState, TextEngine


def _why(alert) -> list[tuple[str, str]]:
    return [(e.rule, e.effect) for e in alert.explanation]


def test_room_category_and_repetition_raise_and_say_so(engine: TextEngine) -> None:
    state = RoomState()
    alerts = [engine.analyze("这个手镯是足金的", RoomContext(), state)[0] for _ in range(3)]
    assert [(a.rule_id, a.severity) for a in alerts] == [("PM-001", "warning")] * 2 + [("PM-001", "violation")]
    assert [_why(a) for a in alerts] == [[], [], [("repetition", "raised")]]
    assert "3" in alerts[2].explanation[0].detail
    (in_room,) = engine.analyze("这个手镯是足金的", RoomContext(category="jewelry"))
    assert in_room.severity == "violation"
    assert _why(in_room) == [("room_category", "raised")]
    assert "jewelry" in in_room.explanation[0].detail


def test_nothing_is_said_to_raise_a_violation_that_stays_one(engine: TextEngine) -> None:
    (alert,) = engine.analyze("这是千足金的", RoomContext(category="jewelry"))
    assert (alert.severity, _why(alert)) == ("violation", [])


def test_certified_attribute_lowers_and_names_the_attribute(engine: TextEngine) -> None:
    (alert,) = engine.analyze("这是千足金的", RoomContext(category="jewelry", certified=["千足金"]))
    assert alert.severity == "info"
    assert _why(alert) == [("certified", "lowered")]
    assert "千足金" in alert.explanation[0].detail


def test_assertive_cue_nearby_supports_and_is_quoted(engine: TextEngine) -> None:
    (alert,) = [a for a in engine.analyze("戴这个绝对能升值") if a.rule_id.startswith("COL-")]
    assert ("claim_cue", "supported") in _why(alert)
    assert "绝对" in alert.explanation[_why(alert).index(("claim_cue", "supported"))].detail


def test_price_rule_states_the_ratio(engine: TextEngine) -> None:
    (alert,) = engine.analyze("原价三千九百九十九，今天直播间只要三百九十九")
    assert _why(alert) == [("price_ratio", "supported")]
    assert "10%" in alert.explanation[0].detail


def test_explanation_is_on_the_wire(engine: TextEngine) -> None:
    (alert,) = engine.analyze("这个手镯是足金的", RoomContext(certified=["precious_metal_claim"]))
    assert alert.wire()["explanation"] == [
        {"rule": "certified", "effect": "lowered", "detail": alert.explanation[0].detail}
    ]


@pytest.mark.parametrize(
    "text, term, rule",
    [
        ("这个不是足金的", "足金", "negation_before"),
        ("最低价是不可能的", "最低价", "denial_after"),
        ("加微信这种事我们不做", "加微信", "refusal_in_clause"),
        ("美白?它没有那个备案", "美白", "questioned_then_denied"),
        ("证书上写的是足金", "足金", "document_read_aloud"),
        ("祝大家财源广进", "财源广进", "wish"),
        ("这个是纯金属的", "纯金", "innocent_phrase"),
        ("我妈在微信上给我发消息", "微信", "needs_context"),
    ],
)
def test_explain_names_the_rule_that_excused_a_hit(engine: TextEngine, text: str, term: str, rule: str) -> None:
    assert engine.analyze(text) == [] or all(a.matched != term for a in engine.analyze(text))
    assert (term, rule) in [(hit.term, hit.excused_by) for hit in engine.explain(text)]


def test_explain_leaves_alerts_out_and_rule_names_are_known(engine: TextEngine) -> None:
    hits = engine.explain("这是千足金的,绝对不是假的,有没有优化")
    assert all(hit.term != "千足金" for hit in hits)
    known = {*NEGATION_RULES, *DISOWNING_RULES, "innocent_phrase", "word_boundary", "room_only_sound"}
    known |= {"lawful_absolute", "inside_longer_hit", "needs_context", "frequent_word", "dictionary_word_needs_cue"}
    known |= {"short_sound_match_unsupported"}
    assert {hit.excused_by for hit in hits} <= known
