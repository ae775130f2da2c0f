"""Exact engine behaviour on the small fixture lexicon (tests/text/fixtures/lexicons)."""

import pytest

from monitor.room import RoomContext
from monitor.text.engine import RoomState


def _hits(engine, text, context=None, state=None):
    return [(a.category, a.severity, a.matched, a.source) for a in engine.analyze(text, context, state)]


def test_longest_term_wins_and_matched_is_as_heard(fixture_engine) -> None:
    assert _hits(fixture_engine, "這個是千足金的手鐲") == [("precious_metal_claim", "violation", "千足金", "lexicon")]


@pytest.mark.parametrize("text", ["第一时间发货", "天然气管道", "纯天然的材料", "升职加薪", "这是第一次来直播间"])
def test_word_boundaries_and_innocent_phrases(fixture_engine, text) -> None:
    assert _hits(fixture_engine, text) == []


def test_short_term_on_its_own_word_matches(fixture_engine) -> None:
    assert _hits(fixture_engine, "我们家销量第一") == [("absolute_claim", "warning", "第一", "lexicon")]
    assert _hits(fixture_engine, "这是足金项链") == [("precious_metal_claim", "warning", "足金", "lexicon")]


def test_homophones_match_on_pinyin_with_lower_confidence(fixture_engine) -> None:
    (alert,) = fixture_engine.analyze("这个可以当传家报")
    assert (alert.category, alert.source, alert.matched) == ("collectible_investment", "pinyin", "传家报")
    assert alert.confidence < 0.9
    assert _hits(fixture_engine, "喝了能降雪压") == [("medical_claim", "violation", "降雪压", "pinyin")]


def test_pinyin_hit_on_a_real_word_needs_a_claim_nearby(fixture_engine) -> None:
    jewelry = RoomContext(category="jewelry")
    assert _hits(fixture_engine, "好好干能升职", jewelry) == []
    assert _hits(fixture_engine, "买了绝对升职", jewelry) == [("collectible_investment", "violation", "升职", "pinyin")]


def test_needs_context_term_alerts_only_with_support(fixture_engine) -> None:
    assert _hits(fixture_engine, "这是天然的") == []
    assert _hits(fixture_engine, "这是天然的", RoomContext(category="jade")) == [
        ("gem_authenticity_claim", "violation", "天然", "lexicon")
    ]
    assert ("gem_authenticity_claim", "warning", "天然", "lexicon") in _hits(fixture_engine, "百分之百天然")


def test_negation_suppresses(fixture_engine) -> None:
    assert _hits(fixture_engine, "这个不是足金的") == []
    assert _hits(fixture_engine, "不要私下加微信") == []


def test_certified_attribute_lowers_to_info(fixture_engine) -> None:
    context = RoomContext(category="jewelry", certified=["足金"])
    assert _hits(fixture_engine, "这是足金的", context) == [("precious_metal_claim", "info", "足金", "lexicon")]


def test_room_category_and_repetition_raise(fixture_engine) -> None:
    assert _hits(fixture_engine, "这款能祛斑", RoomContext(category="cosmetics"))[0][1] == "violation"
    state = RoomState()
    severities = [fixture_engine.analyze("这款能祛斑", None, state)[0].severity for _ in range(3)]
    assert severities == ["warning", "warning", "violation"]


def test_price_rule_and_lexicon_in_one_utterance(fixture_engine) -> None:
    hits = _hits(fixture_engine, "亏本清仓，原价三千九百九十九，今天只要三百九十九")
    assert ("false_price", "warning", "亏本清仓", "lexicon") in hits
    assert ("false_price", "violation", "原价三千九百九十九，今天只要三百九十九", "lexicon") in hits


def test_alert_fields_are_complete(fixture_engine) -> None:
    (alert,) = fixture_engine.analyze("加我微信")
    wire = alert.wire()
    for field in (
        "alert_id",
        "category",
        "severity",
        "rule_id",
        "matched",
        "source",
        "confidence",
        "text",
        "reminder",
        "regulation",
        "lexicon_version",
        "model_version",
        "evidence_id",
        "emitted_at",
    ):
        assert field in wire
    assert wire["lexicon_version"].startswith("lex-")
    assert wire["regulation"] == "网络交易监督管理办法"


def test_surfaces_with_digits_are_not_matched_by_sound(fixture_engine) -> None:
    from monitor.text.engine import _sounds_like_a_word

    assert _sounds_like_a_word("千足金")
    assert not _sounds_like_a_word("999金")
    assert not _sounds_like_a_word("金")


def test_topic_words_support_a_misheard_short_term_in_an_undeclared_room(repo) -> None:
    from monitor.text.engine import TextEngine

    engine = TextEngine.load(repo / "lexicons")
    # 祖今 is heard for 足金 (no character kept): alone it is too weak, beside 手镯 it is
    # a jewelry claim.
    assert [a.category for a in engine.analyze("这个是祖今的")] == []
    assert [a.category for a in engine.analyze("这个是祖今的手镯")] == ["precious_metal_claim"]
    # The topic is remembered for the next utterances of the same room.
    state = RoomState()
    engine.analyze("今天给大家上一款手镯", None, state)
    assert [a.source for a in engine.analyze("这个是祖今的", None, state)] == ["pinyin"]
    # Everyday live-commerce words are real words, not mishearings (主播 sounds like 足铂).
    assert engine.analyze("主播手上这个是十七号圈口的戒指") == []


def test_a_misheard_short_term_that_keeps_one_character_needs_no_support(fixture_engine) -> None:
    # 足经 keeps 足 of 足金 and sounds the same: what a transcriber writes for 足金.
    assert _hits(fixture_engine, "这个是足经的") == [("precious_metal_claim", "warning", "足经", "pinyin")]
    # Same sound, no character kept, no support: too weak (祖今 could be anything).
    assert _hits(fixture_engine, "这个是祖今的") == []


def test_pinyin_room_entries_match_by_sound_only_in_their_declared_room(repo) -> None:
    from monitor.text.engine import TextEngine

    engine = TextEngine.load(repo / "lexicons")
    cosmetics = RoomContext(category="cosmetics")
    # 祛斑 heard as 去搬: a cosmetics claim in a cosmetics room, nothing elsewhere.
    assert [(a.category, a.source) for a in engine.analyze("去搬效果特别明显", cosmetics)] == [
        ("cosmetic_efficacy", "pinyin")
    ]
    assert engine.analyze("去搬效果特别明显") == []
    # Everyday words with the same sound stay innocent even there.
    assert engine.analyze("今天真没白来", cosmetics) == []
    assert engine.analyze("我先去办个事", cosmetics) == []


def test_near_homophones_of_long_terms_match_when_one_syllable_differs(repo) -> None:
    from monitor.text.engine import TextEngine

    engine = TextEngine.load(repo / "lexicons")
    # 签做金 for 千足金: qian/qian, zuo~zu (a near class), jin/jin.
    (alert,) = [a for a in engine.analyze("签做金的手镯") if a.category == "precious_metal_claim"]
    assert (alert.rule_id, alert.matched, alert.source) == ("PM-002", "签做金", "pinyin")
    assert alert.confidence < 0.75
    # Two syllables off is not the term (签做经 still is: jing folds to jin).
    assert [a for a in engine.analyze("先做京的手镯") if a.category == "precious_metal_claim"] == []
    # Two-character terms never match near: 足区 is not 足金.
    assert engine.analyze("这个是足区的") == []
    # Long terms (>= 4 characters) also fold z/c/s and e/i: 自下交易 for 私下交易.
    assert "private_transaction" in {a.category for a in engine.analyze("想要的宝宝自下交易更便宜")}
    # ...but a first syllable off whose remainder is a word is that word (石|高血压).
    assert engine.analyze("这块奇石高血压的按需购买") == []
    # An innocent phrase excuses its near homophones too (医疗器 sounds near 医疗级).
    assert engine.analyze("这个是有医疗器械注册证的") == []


def test_a_misheard_short_term_must_end_on_a_word_boundary(repo) -> None:
    from monitor.text.engine import TextEngine

    engine = TextEngine.load(repo / "lexicons")
    jewelry = RoomContext(category="jewelry")
    # 辟邪 (pinyin: room) heard as 必协 in a jewelry room is the claim...
    assert [(a.category, a.source) for a in engine.analyze("戴这个必协", jewelry)] == [("superstition", "pinyin")]
    assert engine.analyze("戴这个必协") == []
    # The everyday word with that sound stays innocent in the room (皮鞋 for 辟邪).
    assert engine.analyze("这双皮鞋配着链子很搭", jewelry) == []
    # ...but a sound match that is the first half of a word is that word (只玉 in 玉镯).
    assert engine.analyze("这只玉镯收到货有问题找平台客服", RoomContext(category="food")) == []


def test_room_only_sound_matches_do_not_shadow_exact_hits_outside_their_room(repo) -> None:
    from monitor.text.engine import TextEngine

    engine = TextEngine.load(repo / "lexicons")
    # 美白效国: the room-only sound match of a longer variant must not hide the exact 美白.
    assert "cosmetic_efficacy" in {a.category for a in engine.analyze("这个精华美白效国特别好")}


def test_price_rule_pairs_a_reference_price_with_the_now_price_of_the_next_utterance(repo) -> None:
    from monitor.text.engine import TextEngine

    engine = TextEngine.load(repo / "lexicons")
    # Endpointing cut "原价999 | 现在只要199" in two: the pair still alerts, once.
    state = RoomState()
    assert engine.analyze("原价999", None, state) == []
    (alert,) = engine.analyze("现在只要199", None, state)
    assert (alert.rule_id, alert.category) == ("FP-900", "false_price")
    assert engine.analyze("现在只要199", None, state) == []
    # Only the immediately preceding utterance counts.
    state = RoomState()
    engine.analyze("原价999", None, state)
    engine.analyze("今天天气不错", None, state)
    assert engine.analyze("现在只要199", None, state) == []
