import pytest

from monitor.taxonomy import Severity
from monitor.text.normalize import normalize_text
from monitor.text.price import PriceClaim
from monitor.text.price import find_price_claims as _find_price_claims
from tests.text.conftest import shipped_rules


def find_price_claims(heard: str) -> list[PriceClaim]:
    return _find_price_claims(heard, shipped_rules())


@pytest.mark.parametrize(
    "sentence, reference, now",
    [
        ("原价三千九百九十九，今天直播间只要三百九十九", 3999, 399),
        ("专柜卖两千八，我们这里九百九", 2800, 990),
        ("外面卖一千多我们这里一百九十九", 1000, 199),
        ("吊牌价1299元，到手价99元", 1299, 99),
        ("以前卖1.2万现在只要三千八", 12000, 3800),
        ("之前卖39块9，现在9块9", 39.9, 9.9),
        ("今天399，原价3999", 3999, 399),
    ],
)
def test_reference_then_much_lower_now_price(sentence: str, reference: float, now: float) -> None:
    claims = find_price_claims(normalize_text(sentence))
    assert [(c.reference, c.now) for c in claims] == [(reference, now)]


@pytest.mark.parametrize(
    "sentence",
    ["这款三百九十九包邮", "原价199今天179", "今天399，明天恢复原价449", "这个手镯重12克,399一克"],
)
def test_ordinary_prices_and_small_discounts_pass(sentence: str) -> None:
    assert find_price_claims(normalize_text(sentence)) == []


def test_severity_grows_with_the_gap() -> None:
    (claim,) = find_price_claims(normalize_text("原价1000现在只要100"))
    assert claim.severity is Severity.VIOLATION
    (claim,) = find_price_claims(normalize_text("原价1000现在只要500"))
    assert claim.severity is Severity.WARNING


@pytest.mark.parametrize(
    "heard, reference, now",
    [
        ("专柜卖两千八，我们直播间九百救", 2800, 990),  # 救 heard for 九
        ("市场价吧迁八的镯子，今天只要八百八", 8800, 880),
        ("这个镯子以前卖一万二，今天散千八", 12000, 3800),
        ("转贵价四千二，直播间一千二", 4200, 1200),  # the cue itself misheard
    ],
)
def test_misheard_numerals_and_cues_are_repaired(heard: str, reference: float, now: float) -> None:
    (claim,) = find_price_claims(heard)
    assert (claim.reference, claim.now) == (reference, now)
    assert heard.startswith(claim.matched[:2]) or claim.matched in heard


def test_negated_price_talk_is_no_claim() -> None:
    assert find_price_claims("我们不说原价三千现在三百这种话") == []


def test_a_reference_cue_holding_a_now_cue_sound_is_a_reference() -> None:
    # 划线价 contains 线价, which sounds like 现价.
    (claim,) = find_price_claims("划线价一千九，到手价二百九")
    assert (claim.reference, claim.now) == (1900, 290)
