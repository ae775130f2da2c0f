"""The false-reference-price rule: a reference price followed by a much lower "now" price.

"原价3999，今天直播间只要399" or "专柜卖2800，我们这里990" present a reference price
the buyer cannot check; 明码标价和禁止价格欺诈规定 forbids fictitious ones. The rule
reads prices from normalized text (Arabic numerals, see normalize.py), classifies each
by the cue just before it, and fires when a reference price is followed within
:data:`PAIR_WINDOW_CHARS` by a now-price at most :data:`MAX_NOW_RATIO` of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache

import cn2an
from pypinyin import Style, lazy_pinyin

from monitor.taxonomy import Category, Severity
from monitor.text.context import ContextRules
from monitor.text.normalize import normalize
from monitor.text.pinyin import pinyin_key

PAIR_WINDOW_CHARS = 40
"""Most characters between the reference price and the now price."""
CUE_WINDOW_CHARS = 6
"""Most characters between a cue and the price it introduces."""
MAX_NOW_RATIO = 0.6
"""A now price above this fraction of the reference is an ordinary discount."""
VIOLATION_RATIO = 0.2
"""A now price at or below this fraction of the reference is a violation."""

RULE_ID = "FP-900"
REGULATION = "明码标价和禁止价格欺诈规定 第十九条（虚构原价、虚假优惠折价）"
REMINDER = "请勿用无法核实的原价、专柜价对比现价，虚构原价属于价格欺诈；如需对比请使用真实成交价。"

_REFERENCE_CUES = (
    "原价", "原来", "之前", "以前", "平时", "平常", "日常价", "专柜", "市场价", "市面上", "外面", "官网", "吊牌价",
    "吊牌", "标价", "零售价", "门店", "实体店", "商场", "线下", "别人家", "别家", "划线价", "价值", "正价",
    "其他直播间", "旗舰店", "某宝", "品牌店", "店里", "柜台", "别的地方",
)  # fmt: skip
_NOW_CUES = (
    "现在", "现价", "今天", "今晚", "直播间", "这里", "我们这", "咱们这", "只要", "只需", "仅需", "仅要", "就要",
    "才", "到手", "秒杀", "活动价", "福利价", "给你们", "宠粉", "直接", "一口价", "统统", "通通", "全部",
    "我们卖", "我们只卖", "咱家", "我们家",
)  # fmt: skip
# Cues are found on fuzzy pinyin keys (转贵 still reads as 专柜); offsets are shared.
_REFERENCE = re.compile("|".join(sorted({re.escape(pinyin_key(c)) for c in _REFERENCE_CUES}, key=len, reverse=True)))
_NOW = re.compile("|".join(sorted({re.escape(pinyin_key(c)) for c in _NOW_CUES}, key=len, reverse=True)))
_PRICE = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)(w)?(?:(?:块|元|圆)(\d)?|(毛))?")

# Exact toneless syllables of the numerals: a misheard price (九百救, 散千八) is
# repaired only right after a price cue, and only if it then parses as a number.
_NUMERAL_BY_SOUND = {
    "ling": "零", "yi": "一", "er": "二", "liang": "两", "san": "三", "si": "四", "wu": "五", "liu": "六",
    "qi": "七", "ba": "八", "jiu": "九", "shi": "十", "bai": "百", "qian": "千", "wan": "万",
}  # fmt: skip
_TRUE_NUMERALS = frozenset("零一二两三四五六七八九十百千万")
MAX_REPAIR_TRIM_CHARS = 2
"""Leading sound-alike characters a repair may drop (现在就九十九 -> 九十九)."""


@dataclass(frozen=True)
class PriceClaim:
    """A reference price followed by a much lower now price.

    ``start``/``end`` are offsets in the text the claim was found in (normalized);
    ``matched`` is the phrase as heard, once known.
    """

    start: int
    end: int
    reference: float
    now: float
    matched: str = ""
    category: Category = Category.FALSE_PRICE

    @property
    def severity(self) -> Severity:
        ratio = self.now / self.reference
        return Severity.VIOLATION if ratio <= VIOLATION_RATIO else Severity.WARNING

    @property
    def confidence(self) -> float:
        return round(min(0.95, 0.7 + 0.3 * (1 - self.now / self.reference)), 3)


def _value(match: re.Match[str]) -> float:
    value = float(match.group(1))
    if match.group(2):
        value *= 10_000
    if match.group(3):
        value += int(match.group(3)) / 10
    if match.group(4):
        value /= 10
    return value


def _cue_before(pattern: re.Pattern[str], key: str, position: int, floor: int) -> tuple[int, int] | None:
    """Span of the last ``pattern`` cue ending within the cue window before ``position``."""
    window_start = max(floor, position - CUE_WINDOW_CHARS - 5)
    found = None
    for cue in pattern.finditer(key, window_start, position):
        if position - cue.end() <= CUE_WINDOW_CHARS:
            found = cue.span()
    return found


def _cue_then_number(pattern: re.Pattern[str], text: str, key: str) -> bool:
    cue = pattern.search(key)
    return cue is not None and any(ch.isdigit() for ch in text[cue.start() :])


def names_reference_price(text: str, key: str) -> bool:
    """True if normalized ``text`` (pinyin key ``key``) has a reference-price cue (原价,
    专柜...) with a number after it: a claim the next utterance may complete."""
    return _cue_then_number(_REFERENCE, text, key)


def names_now_price(text: str, key: str) -> bool:
    """True if normalized ``text`` has a now-price cue (现在, 只要...) with a number after it."""
    return _cue_then_number(_NOW, text, key)


def find_price_claims(heard: str, rules: ContextRules, *, normalized_key: str | None = None) -> list[PriceClaim]:
    """Every reference/much-lower-now price pair in the utterance ``heard``, not negated
    (``rules``: the lexicon's context rules, ``TextEngine.context_rules``).

    Misheard numerals right after a price cue are repaired first (专柜卖两千八，直播间九百救
    reads 990), then the text is normalized (three forms of a number become one) and
    paired. ``matched`` of each claim is the phrase as heard. ``normalized_key``, the
    pinyin key of the normalized utterance when the caller has it, makes the common
    case (no reference price cue at all) cheap.
    """
    if normalized_key is not None and not _REFERENCE.search(normalized_key):
        return []
    key = pinyin_key(heard)
    if not _REFERENCE.search(key):
        return []
    repaired = _repair_numerals(heard, key)
    normalized = normalize(repaired if repaired is not None else heard)
    text = normalized.text
    text_key = pinyin_key(text)
    claims = []
    for claim in _pairs(text, text_key):
        if rules.is_negated(text, claim.start, claim.end, text_key):
            continue
        lo, hi = normalized.original_bounds(claim.start, claim.end)
        claims.append(replace(claim, matched=heard[lo:hi].strip()))
    return claims


def _repair_numerals(text: str, key: str) -> str | None:
    """``text`` with misheard numerals after price cues put right (same length), or None."""
    chars = list(text)
    changed = False
    for pattern in (_REFERENCE, _NOW):
        for cue in pattern.finditer(key):
            run_start = cue.end()
            while run_start < min(len(text), cue.end() + 2) and _sound(text[run_start]) not in _NUMERAL_BY_SOUND:
                run_start += 1  # "卖", "价" between the cue and the number
            run_end = run_start
            while run_end < len(text) and _sound(text[run_end]) in _NUMERAL_BY_SOUND:
                run_end += 1
            for trim in range(MAX_REPAIR_TRIM_CHARS + 1):
                run = text[run_start + trim : run_end]
                if len(run) < 2 or not _TRUE_NUMERALS & set(run) or _TRUE_NUMERALS.issuperset(run):
                    continue
                candidate = "".join(_NUMERAL_BY_SOUND[_sound(c)] for c in run)
                if _parses(candidate):
                    chars[run_start + trim : run_end] = candidate
                    changed = True
                    break
    return "".join(chars) if changed else None


@lru_cache(maxsize=8192)
def _sound(char: str) -> str:
    if not "\u4e00" <= char <= "\u9fff":
        return ""
    return lazy_pinyin(char, style=Style.NORMAL)[0]


def _parses(numerals: str) -> bool:
    try:
        cn2an.cn2an(numerals, "smart")
    except (ValueError, KeyError, IndexError, TypeError):
        return False
    return True


def _pairs(text: str, key: str) -> list[PriceClaim]:
    references: list[tuple[int, float]] = []
    nows: list[tuple[int, float]] = []
    claims: list[PriceClaim] = []
    previous_end = 0
    for match in _PRICE.finditer(text):
        value = _value(match)
        if value <= 0:
            continue
        reference_cue = _cue_before(_REFERENCE, key, match.start(), previous_end)
        now_cue = _cue_before(_NOW, key, match.start(), previous_end)
        previous_end = match.end()
        # The later cue decides; overlapping cues (划线价 holds 线价, which sounds like
        # 现价) are the reference.
        if reference_cue is not None and (now_cue is None or now_cue[0] < reference_cue[1]):
            # "今天399，原价3999": a reference may also follow the now price.
            pair = _pair(nows, match.start(), value, earlier_is_reference=False)
            if pair is not None:
                claims.append(PriceClaim(pair[0], match.end(), value, pair[1]))
                nows.clear()
            else:
                references.append((reference_cue[0], value))
            continue
        if now_cue is None:
            continue
        pair = _pair(references, match.start(), value, earlier_is_reference=True)
        if pair is not None:
            claims.append(PriceClaim(pair[0], match.end(), pair[1], value))
            references.clear()
        else:
            nows.append((now_cue[0], value))
    return claims


def _pair(
    earlier: list[tuple[int, float]], position: int, value: float, *, earlier_is_reference: bool
) -> tuple[int, float] | None:
    """The nearest earlier (cue offset, price) within the pair window that makes a claim
    with ``value``: a now price at most :data:`MAX_NOW_RATIO` of the reference."""
    for cue_start, earlier_value in reversed(earlier):
        if position - cue_start > PAIR_WINDOW_CHARS + CUE_WINDOW_CHARS:
            return None
        reference, now = (earlier_value, value) if earlier_is_reference else (value, earlier_value)
        if now <= reference * MAX_NOW_RATIO:
            return cue_start, earlier_value
    return None
