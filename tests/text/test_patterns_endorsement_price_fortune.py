"""Pattern kinds added for claims written in other people's vocabulary (issue: outside
writers), each test citing the rule it rests on, with the lawful uses those rules leave.

Sources: 《广告法》 arts. 9(2), 9(3), 9(8), 16(1)(2), 16(1)(4), 17, 18(1)(5), 25(1);
《医疗广告管理办法》 art. 7; 《明码标价和禁止价格欺诈规定》 (2022) art. 19(2)-(4) and the
reference price of its art. 22 (前七日内最低成交价); GB/T 16552-2017, GB/T 16553-2017;
《化妆品监督管理条例》 art. 16 (防晒 is special-use); platform rules against 站外导流 and
《网络交易监督管理办法》 (2021); 《保健食品注册与备案管理办法》 (approved functions).
"""

from __future__ import annotations

import pytest

from monitor.text.engine import TextEngine
from tests.text.conftest import categories_of, rules_of


@pytest.mark.parametrize(
    "text",
    [
        "这款牙膏是协和医院的主任医师推荐的",
        "这个台灯是教育部指定的护眼产品",
        "我们这款米是航天员吃的",
        "这个保温杯是外交部发言人同款",
        "中科院的院士团队亲自研发的净水器",
    ],
)
def test_named_authority_endorsing_goods_ad_law_art9_item2_and_art16(engine: TextEngine, text: str) -> None:
    assert "OFF-901" in rules_of(engine, text)


@pytest.mark.parametrize("text", ["医生让我多喝水少熬夜", "我们老板以前是电视台的记者"])
def test_authority_named_without_endorsement_is_no_claim(engine: TextEngine, text: str) -> None:
    assert "OFF-901" not in rules_of(engine, text)


def test_efficacy_rate_ad_law_art16_item2(engine: TextEngine) -> None:
    assert "MED-904" in rules_of(engine, "这个调理茶的有效率是百分之九十五")


def test_goods_replacing_medicine_ad_law_art17(engine: TextEngine) -> None:
    assert "medical_claim" in categories_of(engine, "喝了三个月我的降糖药都停掉了")


@pytest.mark.parametrize(
    "text",
    [
        "我们先把价格涨到八百，然后再打五折给大家",
        "这个划线价我们从来没卖过这个价",
        "付款的时候再加一个服务费八十",
        "这个价格低到亏本，我自己贴钱卖",
        "今天是全年最低价",
    ],
)
def test_price_fraud_talk_price_rules_2022_art19(engine: TextEngine, text: str) -> None:
    assert "false_price" in categories_of(engine, text)


def test_seven_day_lowest_price_is_the_lawful_reference_price_rules_2022_art22(engine: TextEngine) -> None:
    assert not categories_of(engine, "这个价格是在前七天最低成交价九十九的基础上再减十块")


@pytest.mark.parametrize(
    "text",
    ["这套邮票放十年至少翻三倍", "这个紫砂壶以后能拍出天价", "这批限量手办二手已经炒到上千了"],
)
def test_promised_future_return_ad_law_art25_item1(engine: TextEngine, text: str) -> None:
    assert "COL-901" in rules_of(engine, text)


@pytest.mark.parametrize(
    "text",
    ["这对貔貅摆在门口，生意兴隆", "这个手串戴上半年必脱单", "这面镜子能把对门的煞气挡回去"],
)
def test_charm_bringing_luck_ad_law_art9_item8(engine: TextEngine, text: str) -> None:
    assert "superstition" in categories_of(engine, text)


@pytest.mark.parametrize(
    "text",
    ["大家记一下我的扣扣号", "去我们的独立网站下单更便宜", "钱直接打到公司对公账户上"],
)
def test_other_channels_for_the_sale_online_trade_measures_2021(engine: TextEngine, text: str) -> None:
    assert "private_transaction" in categories_of(engine, text)


@pytest.mark.parametrize(
    "text",
    ["这颗红宝石是天然的", "这个翡翠手镯没有任何优化", "莫桑石就是钻石"],
)
def test_naturalness_and_gem_naming_gbt16552_gbt16553(engine: TextEngine, text: str) -> None:
    assert "gem_authenticity_claim" in categories_of(engine, text)


@pytest.mark.parametrize(
    "text",
    ["这个隔离霜自带防晒指数三十", "这个洗发水用了头发变密了"],
)
def test_special_use_cosmetics_regulation_art16(engine: TextEngine, text: str) -> None:
    assert "cosmetic_efficacy" in categories_of(engine, text)


@pytest.mark.parametrize(
    ("text", "rule"),
    [("这台吸尘器的吸力是宇宙级的", "ABS-905"), ("我们的保暖绝对是第一梯队", "ABS-902")],
)
def test_grade_words_near_superlatives_guide_2023_art2(engine: TextEngine, text: str, rule: str) -> None:
    assert rule in rules_of(engine, text)


@pytest.mark.parametrize(
    "text",
    [
        "那部片子拿了金马奖最佳影片",  # an award with its source (guide art. 5)
        "他看过最精彩的一场是世界杯决赛",  # a match, not goods
        "这是本品牌历史上最轻的一款",  # the brand's own range (guide art. 5(1))
        "我们自己家这几款锅里面，这个容量最大",  # own range named in the clause before
    ],
)
def test_awards_matches_and_own_range_are_lawful_guide_2023_art5(engine: TextEngine, text: str) -> None:
    assert "absolute_claim" not in categories_of(engine, text)


@pytest.mark.parametrize(
    "text",
    [
        "这款是保健食品，批准的保健功能是增强免疫力",  # the registration read aloud
        "检验结论写的是翡翠A货",  # a certificate read aloud
        "铂金戒指的钢印是Pt950",  # the hallmark GB 11887 requires
        "美白祛斑这类功效得有特证才能说",  # what a claim requires (条例 art. 16)
        "防脱和生发属于特殊用途化妆品",
        "我们家不卖什么特供产品",  # refusal
        "我去年腰扭了，做了两个月康复治疗才好",  # real care, the speaker's own history
    ],
)
def test_lawful_talk_about_claims_is_no_alert(engine: TextEngine, text: str) -> None:
    assert not engine.analyze(text)


@pytest.mark.parametrize("text", ["这支面霜用一个月，跟打了热玛吉一样", "这个精华就是涂抹版的玻尿酸"])
def test_likening_a_cosmetic_to_medical_aesthetics_regulation_art37(engine: TextEngine, text: str) -> None:
    assert "COS-905" in rules_of(engine, text)


@pytest.mark.parametrize(
    "text",
    ["我爸的痛风自从喝了这个就没再疼过", "膝盖积水贴了一周就消下去了"],
)
def test_disease_gone_after_using_the_goods_ad_law_art17(engine: TextEngine, text: str) -> None:
    assert "medical_claim" in categories_of(engine, text)


@pytest.mark.parametrize(
    "text",
    [
        "医生没推荐过我们，别乱说",  # denial inside the span
        "有人问这个酒以后值不值钱，我不知道",  # a question inside the span
        "这个红绳戴了不会转运，就是图个喜庆",
        "这个金蟾就是个摆件，放哪儿都行，跟财运没关系",  # denial right after
        "这个翡翠是不是天然的，看证书",
        "枸杞泡水会变色，不是染色",  # no gem named: GB/T 16552 is about gems
        "这款粉底的色号叫冷白皮",  # a shade name, not an effect
    ],
)
def test_denied_or_asked_pattern_spans_are_no_claim(engine: TextEngine, text: str) -> None:
    assert not {"OFF-901", "COL-901", "SUP-901", "GEM-901", "COS-903"} & rules_of(engine, text)


def test_best_part_of_one_thing_is_no_comparison_guide_2023_art5_item1(engine: TextEngine) -> None:
    assert "absolute_claim" not in categories_of(engine, "我觉得这个电影最好看的地方是结尾那个反转")
    assert "absolute_claim" in categories_of(engine, "这是最好看的裙子")


@pytest.mark.parametrize(
    "text",
    ["这种大件不在线上卖，来了现金交易", "想要便宜的，私下聊", "便宜可以，但是得走我个人"],
)
def test_cash_and_personal_deals_off_the_platform_online_trade_measures_2021(engine: TextEngine, text: str) -> None:
    assert "PT-901" in rules_of(engine, text)


@pytest.mark.parametrize("text", ["今天不拍明天就贵一百", "库存就这些，卖完就涨价"])
def test_fake_deadline_price_rules_2022_art19_item4(engine: TextEngine, text: str) -> None:
    assert "false_price" in categories_of(engine, text)
