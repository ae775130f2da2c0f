"""Productive claim patterns (lexicons/_patterns.yaml, monitor/text/patterns.py) on the
shipped lexicons, and the lawful uses the regulations name, each test citing its source.

Sources: 《广告法》 arts. 9(3), 11, 16-18; SAMR 《广告绝对化用语执法指南》 (2023) arts. 2, 4, 5;
《化妆品监督管理条例》 arts. 16, 37 and 《化妆品分类规则和分类目录》; 《食品安全法》 art. 73;
《明码标价和禁止价格欺诈规定》 (2022) art. 19; GB 11887-2012 with amendment 1.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.errors import LexiconError
from monitor.text.engine import TextEngine
from monitor.text.lexicon import load_lexicons
from tests.text.conftest import REPO, categories_of, rules_of

# -- 《广告法》第九条第（三）项 and the 2023 guide art. 2 ("含义相同或者近似的其他用语") ----------


@pytest.mark.parametrize(
    ("text", "matched"),
    [
        ("我们家的羽绒服是最暖和的", "最暖和"),
        ("这个材质是最耐磨的", "最耐磨"),
        ("全国最大的翡翠工厂", "最大"),
        ("这个价格呢,全网都没有,绝对是最低的", "最低"),
        ("最最最划算的一次", "最最最划算"),
    ],
)
def test_superlative_of_the_goods_is_an_absolute_claim_ad_law_art9(engine: TextEngine, text: str, matched: str) -> None:
    alerts = [a for a in engine.analyze(text) if a.rule_id == "ABS-901"]
    assert [(a.category, a.matched) for a in alerts] == [("absolute_claim", matched)]
    assert "第九条" in alerts[0].regulation


@pytest.mark.parametrize(
    "text",
    [
        "最近天气转凉了,大家注意加衣服",  # time: 最近
        "最后再给大家看一下这个颜色",  # time order: 最后
        "你们最好先量一下自己的手围再拍",  # 最好 + verb: advice
        "我最喜欢的颜色是蓝色",  # a preference verb, not an adjective of the goods
        "其实最重要的是坚持",  # a situation, not the goods
        "他最大的优点就是脾气好",  # 最大的 + an abstract noun
        "这件衣服最大的是XL码",  # a size in the range
        "这个足浴盆能加热,最高四十八度",  # a range in a specification
        "这个项目的优先级最高,其他的先往后放",  # a bare dimension with no goods attribute
        "这个接口最慢的时候要三秒",  # when, not what
        "这个颈部按摩仪第一档最轻",  # a setting of the device
    ],
)
def test_everyday_superlatives_are_no_claim(engine: TextEngine, text: str) -> None:
    assert "absolute_claim" not in categories_of(engine, text)


@pytest.mark.parametrize("text", ["最佳赏味期是开封后七天", "最佳食用时间是早餐后半小时", "这道题最简单的方法是画个图"])
def test_consumer_tips_are_lawful_guide_2023_art5_item2(engine: TextEngine, text: str) -> None:
    """指南第五条（二）: 仅用于宣传最佳方法、最佳时间、最佳保质期等消费提示."""
    assert "absolute_claim" not in categories_of(engine, text)


@pytest.mark.parametrize("text", ["这是我们店里卖得最好的一款,自家店里比", "这是我们店里销量最好的,只是我们自己店里"])
def test_comparison_within_the_own_shop_is_lawful_guide_2023_art5_item1(engine: TextEngine, text: str) -> None:
    """指南第五条（一）: 仅用于自我比较描述同一品牌或同一企业的商品."""
    assert "absolute_claim" not in categories_of(engine, text)


def test_market_scope_overrides_the_own_shop(engine: TextEngine) -> None:
    """A comparison with every other seller (全网) is no self comparison, whatever else is said."""
    assert "absolute_claim" in categories_of(engine, "我们店里这款全网最便宜")


@pytest.mark.parametrize(
    "text", ["这款奶粉排名第一", "它的口碑是第一的", "这个是第一品质,大家放心买", "连续五年第一的牌子"]
)
def test_rankings_are_claims_ad_law_art9_and_art11(engine: TextEngine, text: str) -> None:
    assert "absolute_claim" in categories_of(engine, text)


@pytest.mark.parametrize(
    "text",
    [
        "这是我第一次直播卖首饰",
        "拍下之后我们第一时间安排发货",
        "第一天上班的时候我啥也不会",
        "第一步先洁面,第二步上水",
        "他是我们公司第一个员工",
    ],
)
def test_ordinals_and_time_order_are_no_ranking_guide_2023(engine: TextEngine, text: str) -> None:
    """第一 as an ordinal or a time order (第一次, 第一时间) ranks nothing against other goods."""
    assert "absolute_claim" not in categories_of(engine, text)


@pytest.mark.parametrize(
    "text", ["老师说这次作文比赛他是年级第一", "那次比赛我们队拿了第一名", "绝对是本赛季最佳进球之一"]
)
def test_rankings_of_pupils_and_players_are_no_claim_about_goods(engine: TextEngine, text: str) -> None:
    """指南第四条: the rule concerns the goods advertised; a school or sports result is not one."""
    assert "absolute_claim" not in categories_of(engine, text)


@pytest.mark.parametrize(
    "text", ["根据天猫榜单数据,这款是店铺销量第一", "它在二零二二年的评测里拿了第一,评测报告在详情页"]
)
def test_ranking_with_a_named_source_is_lawful_ad_law_art11(engine: TextEngine, text: str) -> None:
    """《广告法》第十一条 and 指南第五条: a ranking that is true and names its source."""
    assert "absolute_claim" not in categories_of(engine, text)


@pytest.mark.parametrize("text", ["咱们这个锅是唯一不粘的锅", "我们是国内唯一拿到这个专利的", "这是唯一一款能做到的"])
def test_unique_claims_ad_law_art9(engine: TextEngine, text: str) -> None:
    assert "ABS-903" in rules_of(engine, text)


@pytest.mark.parametrize("text", ["唯一的缺点就是有点重", "我唯一担心的是物流慢", "我唯一的爱好就是钓鱼"])
def test_unique_about_a_person_or_a_flaw_is_no_claim(engine: TextEngine, text: str) -> None:
    assert "absolute_claim" not in categories_of(engine, text)


@pytest.mark.parametrize(("text", "rule"), [("我们是第一家做这个的", "ABS-904"), ("这是国内首创的技术", "ABS-904")])
def test_first_mover_claims_ad_law_art9_and_art11(engine: TextEngine, text: str, rule: str) -> None:
    assert rule in rules_of(engine, text)


def test_plain_launch_is_time_order_not_a_claim(engine: TextEngine) -> None:
    """A launch today (首发) is time order, lawful when true; 全球首发 compares with the world."""
    assert "ABS-904" not in rules_of(engine, "这款今天首发,大家可以看看")
    assert "ABS-904" in rules_of(engine, "这款手机全球首发")


@pytest.mark.parametrize("text", ["零食之王,好吃到哭", "性价比天花板,闭眼入", "这是手机里的王者"])
def test_king_and_ceiling_metaphors_are_absolute_guide_2023_art2(engine: TextEngine, text: str) -> None:
    assert "ABS-905" in rules_of(engine, text)


@pytest.mark.parametrize("text", ["狮子是百兽之王", "我家天花板漏水了", "晚上一起打王者荣耀吧"])
def test_literal_kings_and_ceilings_are_no_claim(engine: TextEngine, text: str) -> None:
    assert "absolute_claim" not in categories_of(engine, text)


@pytest.mark.parametrize("text", ["百分之百有效,不好用你来找我", "这个效果百分百看得见"])
def test_certainty_of_effect_ad_law_art9_and_art16(engine: TextEngine, text: str) -> None:
    """《广告法》第十六条第一款第（一）项: no 功效、安全性的断言或者保证."""
    assert "ABS-906" in rules_of(engine, text)


@pytest.mark.parametrize("text", ["这件T恤是百分之百纯棉的", "我们百分百用心做好售后"])
def test_label_facts_and_service_attitude_are_lawful_guide_2023_art4(engine: TextEngine, text: str) -> None:
    """A fibre content on the label is a fact; 指南第四条: 仅表明服务态度 is no claim about goods."""
    assert "ABS-906" not in rules_of(engine, text)


# -- medical claims: 《广告法》第十六、十七条; 《食品安全法》第七十三条 --------------------------


@pytest.mark.parametrize(
    "text",
    [
        "这个枕头能治颈椎病",
        "这个泡脚包还能治疗痛风",
        "老寒腿用这个护膝,根除风湿",
        "喝了这个茶,胃病就好了",
        "吃了这个蜂胶,糖尿病就不用打针了",
    ],
)
def test_cure_verbs_on_diseases_ad_law_art17(engine: TextEngine, text: str) -> None:
    assert "medical_claim" in categories_of(engine, text)


@pytest.mark.parametrize(
    "text",
    [
        "这款枕头治不了颈椎病,颈椎不舒服去医院拍个片",  # negated in the verb itself
        "我上周感冒了,去医院打了针现在好了",  # real care did it
        "他这个人毛病就是多,改了就好了",  # 毛病 is a flaw
        "今天太炎热了,大家注意防暑",  # 炎热 is the weather
    ],
)
def test_real_care_and_disease_look_alikes_are_no_claim(engine: TextEngine, text: str) -> None:
    assert "medical_claim" not in categories_of(engine, text)


@pytest.mark.parametrize("text", ["关节痛的用这个贴,一盒见效", "一个疗程见效", "湿疹用上三天就痊愈了"])
def test_quick_effect_promises_ad_law_art16(engine: TextEngine, text: str) -> None:
    assert "medical_claim" in categories_of(engine, text)


@pytest.mark.parametrize("text", ["毛衣第一次洗会有点掉毛,洗两次就好了", "这双鞋刚穿有点磨脚,穿两天就好了"])
def test_everyday_settling_in_is_no_effect_promise(engine: TextEngine, text: str) -> None:
    assert "medical_claim" not in categories_of(engine, text)


def test_no_relapse_is_a_treatment_guarantee_ad_law_art16(engine: TextEngine) -> None:
    assert "MED-903" in rules_of(engine, "这个用了以后再也不复发")
    assert "medical_claim" in categories_of(engine, "用了以后鼻炎再也不复发")


# -- cosmetics: 《化妆品监督管理条例》第十六条 (special use), 第三十七条 (no medical effect) ------


@pytest.mark.parametrize(
    "text",
    [
        "这个精华能淡化色斑",
        "抬头纹法令纹都能抚平",
        "脸上的黄褐斑淡了一大半",
        "这个美白霜一抹就白",
        "秃顶的都长出新头发了",
    ],
)
def test_special_use_efficacy_cosmetics_regulation_art16(engine: TextEngine, text: str) -> None:
    assert "cosmetic_efficacy" in categories_of(engine, text)


@pytest.mark.parametrize("text", ["这个霜能根治色斑", "这个药膏能治疗痤疮"])
def test_a_cosmetic_that_cures_is_two_claims_regulation_art37(engine: TextEngine, text: str) -> None:
    """根治色斑: a special-use efficacy (祛斑) and a medical effect no cosmetic may claim."""
    assert {"cosmetic_efficacy", "medical_claim"} <= categories_of(engine, text)


@pytest.mark.parametrize("text", ["这款眼霜去不了皱纹,就是保湿", "这件衬衫是抗皱面料,不用熨", "这个耳堵是防脱落的设计"])
def test_negated_efficacy_and_fabric_words_are_no_claim(engine: TextEngine, text: str) -> None:
    assert "cosmetic_efficacy" not in categories_of(engine, text)


# -- prices: 《明码标价和禁止价格欺诈规定》第十九条第（四）项 -----------------------------------


@pytest.mark.parametrize(
    "text", ["再不买就没了,最后十单", "全民免单,今天下单的全部免费送", "最后三分钟,抢完就恢复原价"]
)
def test_fake_urgency_price_fraud_rules_art19(engine: TextEngine, text: str) -> None:
    assert "false_price" in categories_of(engine, text)


@pytest.mark.parametrize(
    "text", ["最后五分钟我们抽个奖", "这个洗脸巾是一次性的", "今天主播的话是作为一个破价福利直播间"]
)
def test_giveaways_and_room_labels_are_no_price_claim(engine: TextEngine, text: str) -> None:
    assert "false_price" not in categories_of(engine, text)


# -- sound-alike matches and standards talk (issue 17, item 4) ---------------------------------


@pytest.mark.parametrize("text", ["今天主播的话是作为一个破价福利直播间", "这道题最简单的方法是画个图"])
def test_sound_alike_never_lands_on_a_frequent_word(engine: TextEngine, text: str) -> None:
    """主播 sounds like 足铂 and 最简单 like 最尖端, but both are everyday words (jieba's corpus counts
    简单 thousands of times; 主播 is a live-room word): such a heard word is never a misheard term."""
    assert not [a for a in engine.analyze(text) if a.source == "pinyin"]


def test_rare_misheard_words_still_match(engine: TextEngine) -> None:
    assert [(a.category, a.source) for a in engine.analyze("这个可以当传家保")] == [
        ("collectible_investment", "pinyin")
    ]


@pytest.mark.parametrize(
    "text",
    [
        "国标规定足金的含金量不低于千分之九百九十",
        "国家标准里足金就是最高的纯度名称了",
        "足金的标准是千分之九百九十,低于这个就不能叫足金",
        "“美白”属于特殊化妆品,我们这个没有特证所以不说",
        "有人说千足金,国标里没这个叫法",
    ],
)
def test_standards_talk_and_quoting_are_no_claim_gb11887(engine: TextEngine, text: str) -> None:
    """Reading GB 11887 or the cosmetics rules aloud says what a name means, not what the goods are
    (指南第五条（三）: names in national standards)."""
    assert engine.analyze(text) == []


def test_a_claim_after_a_standard_is_still_a_claim(engine: TextEngine) -> None:
    """ "按国标这个是千足金" asserts a withdrawn name of the goods (GB 11887 amendment 1)."""
    assert "precious_metal_claim" in categories_of(engine, "按照国家标准,这个是千足金的")


# -- the file itself ----------------------------------------------------------------------------


def test_every_pattern_cites_a_regulation_and_has_a_unique_rule_id(engine: TextEngine) -> None:
    assert engine.patterns is not None
    entries = engine.patterns.entries
    assert len({e.rule_id for e in entries}) == len(entries) >= 14
    assert all("《" in e.regulation for e in entries)
    lexicon_ids = {rule.rule_id for rule in engine.lexicon}
    assert not lexicon_ids & {e.rule_id for e in entries}


def test_patterns_file_is_part_of_the_lexicon_version(tmp_path: Path) -> None:
    import shutil

    target = tmp_path / "lex"
    shutil.copytree(REPO / "lexicons", target)
    before = load_lexicons(target).version
    path = target / "_patterns.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("耐磨,", "耐磨, 耐晒,"), encoding="utf-8")
    assert load_lexicons(target).version != before


def test_pattern_missing_a_word_list_fails_at_load(tmp_path: Path) -> None:
    target = tmp_path / "lex"
    import shutil

    shutil.copytree(REPO / "lexicons", target)
    path = target / "_patterns.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("  dose:", "  doses:"), encoding="utf-8")
    with pytest.raises(LexiconError, match=r"_patterns.yaml: pattern \d+ \(quick_effect\): missing word lists: dose"):
        load_lexicons(target)


# -- entries added from the primary sources (issue 17, item 1) ----------------------------------


@pytest.mark.parametrize(
    ("text", "category", "source"),
    [
        ("这款是至尊品质", "absolute_claim", "《广告法》第九条第（三）项"),
        ("我们的技术世界领先", "absolute_claim", "《广告法》第九条第（三）项"),
        ("填补了国内空白的产品", "absolute_claim", "《广告法》第九条第（三）项"),
        ("这个茶能调节血糖", "medical_claim", "《保健食品功能目录》"),
        ("这个饮料润肠通便", "medical_claim", "《保健食品功能目录》"),
        ("这个面霜能止痒抗过敏", "medical_claim", "《化妆品监督管理条例》第三十七条"),
        ("这是国家领导人用的", "official_endorsement", "《广告法》第九条第（二）项"),
        ("质检总局免检的", "official_endorsement", "国家免检制度已于2008年废止"),
        ("全民免单,拍就送", "false_price", "《明码标价和禁止价格欺诈规定》第十九条"),
        ("想要的打到银行卡,给你便宜", "private_transaction", "《网络交易监督管理办法》"),
        ("戴上它提升财运", "superstition", "《广告法》第九条第（八）项"),
    ],
)
def test_entries_cite_the_source_they_rest_on(engine: TextEngine, text: str, category: str, source: str) -> None:
    alerts = [a for a in engine.analyze(text) if a.category == category]
    assert alerts, text
    assert any(source in a.regulation for a in alerts), [a.regulation for a in alerts]


@pytest.mark.parametrize(
    "text",
    [
        "泡个热水澡能缓解疲劳",  # health words in everyday talk need a food room or a claim cue
        "这部电影的特效做得真好",
        "他是我的主治医生",
        "我们要先做数据脱敏再给外包",
        "这是他登上顶峰的那一年",
        "这是一条独家新闻",
    ],
)
def test_new_entries_stay_quiet_in_everyday_talk(engine: TextEngine, text: str) -> None:
    assert engine.analyze(text) == []
