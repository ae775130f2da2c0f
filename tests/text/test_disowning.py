"""Disowning rules (context.is_disowned) and solicitation cues for contact channels.

Sentences written for these tests; each names the mechanism it exercises.
"""

import pytest

from monitor.text.engine import TextEngine
from monitor.text.normalize import normalize_text
from tests.text.conftest import shipped_rules


def _negated(sentence: str, term: str) -> bool:
    text = normalize_text(sentence)
    start = text.index(term)
    return shipped_rules().is_negated(text, start, start + len(term))


@pytest.mark.parametrize(
    "sentence, term",
    [
        # a refusal ending the clause, after a word about the term
        ("私下交易这种事咱们从来不干", "私下交易"),
        ("开光这两个字我们不能用", "开光"),
        # a refusal ending the next short clause
        ("银行卡转账风险太大,我们不接", "银行卡转账"),
        ("祛斑这个功效它没有注册,所以不提", "祛斑"),
        # a questioned term answered with a denial or a plainer description
        ("央视推荐?没有,你们别乱传", "央视推荐"),
        ("能降血压吗?不知道,这就是普通的茶", "降血压"),
        ("转运?它就是个普通的手链", "转运"),
        # a quoted term after a ban, or a list of quoted terms talked about as words
        ("广告法不允许用“最好”“第一”这样的字眼", "第一"),
        ("我们从来不说“根治”", "根治"),
        ("“纯天然”“零添加”这些叫法都要有依据", "纯天然"),
        # a document read aloud
        ("鉴定书上写着天然翡翠,编号在下面", "天然翡翠"),
        # someone else's claim, condemned later
        ("别的直播间说这个能抗衰老,那是骗人的", "抗衰老"),
        ("有人说我们这里有内部价,不是真的,别上当", "内部价"),
        # doubting / asking / wishing
        ("别以为挂个葫芦就能招财", "招财"),
        ("这个到底会不会升值", "升值"),
        ("祝各位家人们新年快乐,福寿安康,长命百岁", "长命百岁"),
        # reserved for others, design motif, talking the audience out of it
        ("只有药品才能说降血糖,我们这是茶", "降血糖"),
        ("这是貔貅造型的开瓶器", "貔貅"),
        ("想要祛痘的姐妹别拍这个,它就是个洗面奶", "祛痘"),
        ("我们不这么宣传,它没有保值这个说法", "保值"),
        # a hedge: "not necessarily"
        ("这不一定是全网最低价,大家可以比一比", "全网最低价"),
        ("全网最低价倒不一定,但是性价比很高", "全网最低价"),
        ("喝这个未必能降血压,别指望它", "降血压"),
    ],
)
def test_disowned_mentions_are_negated(sentence: str, term: str) -> None:
    assert _negated(sentence, term)


@pytest.mark.parametrize(
    "sentence, term",
    [
        # saying it anyway (preterition) stays a claim
        ("招财这两个字我不提,你戴上自己感受", "招财"),
        ("根治这事儿我不讲,但是吃完就没再疼过", "根治"),
        # cessation, not refusal
        ("最后一天,明天就不卖了", "最后一天"),
        # a refusal of something else
        ("这是足金的,假货我们不卖", "足金"),
        # no denial after the question
        ("能升值吗?肯定能", "升值"),
        # a report that is not condemned is a testimonial
        ("有个粉丝说戴了以后真的转运了", "转运"),
        # a tag question is no ban: the figure after it is still claimed
        ("你们看这个检测仪,看到没有,千足金", "千足金"),
        # the word "名字" in a lure is not talk about a word
        ("薇信搜一下我的名字就能找到", "薇信"),
    ],
)
def test_claims_are_kept(sentence: str, term: str) -> None:
    assert not _negated(sentence, term)


@pytest.mark.parametrize(
    "sentence, expected",
    [
        ("加我微信领优惠", True),
        ("微信号就是我的名字", True),
        ("钱直接转我微信就行", True),
        ("我在微信上看到一篇文章", False),
        ("微信支付在收银台里可以选", False),
    ],
)
def test_contact_channel_needs_solicitation(sentence: str, expected: bool) -> None:
    text = normalize_text(sentence)
    start = text.index("微信")
    assert shipped_rules().has_claim_cue(text, start, start + 2) is expected


def test_engine_drops_story_mentions_of_wechat(engine: TextEngine | None = None) -> None:
    from pathlib import Path

    engine = engine or TextEngine.load(Path(__file__).resolve().parents[2] / "lexicons")
    assert not [a for a in engine.analyze("我姐在微信上给我发了张照片") if a.rule_id in {"PT-003", "PT-011"}]
    assert not [a for a in engine.analyze("同学在微信群里发了个通知") if a.rule_id in {"PT-003", "PT-011"}]
    assert [a for a in engine.analyze("想要的来微信找我") if a.rule_id == "PT-003"]
    assert [a for a in engine.analyze("拉你们进微信群,群里更便宜") if a.category == "private_transaction"]


@pytest.mark.parametrize(
    "sentence, rule_id",
    [
        ("这个保温杯内胆是纯金属的", "PM-006"),
        ("这个万能充适配各种手机", "ABS-029"),
        ("老客户回购可以领券", "COL-026"),
        ("明天是我最后一天上班", "FP-004"),
    ],
)
def test_everyday_senses_are_innocent(sentence: str, rule_id: str) -> None:
    from pathlib import Path

    engine = TextEngine.load(Path(__file__).resolve().parents[2] / "lexicons")
    assert not [a for a in engine.analyze(sentence) if a.rule_id == rule_id]
