"""Productive claim patterns: 最 + adjective, X第一, 唯一, 首家, X之王, 100% + effect,
cure verbs on diseases, skin efficacy, fake urgency (``lexicons/_patterns.yaml``).

A word list catches 最低价 but not 最耐磨, 零食之王 or 三天就痊愈. Each *kind* of
pattern is one function below over the word lists of ``_patterns.yaml``; the file's
entries name the rule (id, category, severity, the regulation it rests on, reminder).
The lawful uses the sources name are exceptions: 最近/最后 + time, 最好 + a verb
(advice), consumer tips (最佳食用时间), rankings among pupils or runners, 第一次 /
第一时间 (no pattern matches an ordinal), comparisons within the speaker's own shop
and rankings with a named source (:func:`lawful_absolute`, SAMR 2023 guide art. 5).

Patterns run on normalized text (see normalize.py: 百分之百 is ``100%``, clauses are
separated by ``,``). :meth:`PatternSet.find` returns spans; the engine treats them like
exact lexicon hits (negation, disowning, certification and severity rules apply).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Literal

import jieba.posseg
from pydantic import BaseModel, ConfigDict, Field

from monitor.taxonomy import Category, Severity
from monitor.text.normalize import CLAUSE_MARK
from monitor.text.pinyin import pinyin_key

PatternKind = Literal[
    "superlative", "rank_first", "unique", "pioneer", "king", "certainty", "cure", "quick_effect",
    "no_relapse", "skin_efficacy", "skin_medical", "whitening", "hair_growth", "urgency",
    "medical_aesthetic", "endorsement", "efficacy_rate", "price_bait", "investment_return", "fortune",
    "off_platform", "gem_natural",
]  # fmt: skip

SUPERLATIVE_LOOKAHEAD_CHARS = 4
"""Characters after 最 looked up as the word it grades (最耐磨, 最受欢迎)."""
SCOPE_GAP_CHARS = 3
"""Most characters between a scope (全网, 行业) and the 最/第一 it widens."""
CURE_GAP_CHARS = 4
"""Most characters between a cure verb and the disease it names (能治好多年的胃病)."""
OUTCOME_GAP_CHARS = 8
"""Most characters between a disease and the outcome that says it went away."""


class PatternEntry(BaseModel):
    """One pattern rule of ``_patterns.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: PatternKind
    rule_id: str = Field(pattern=r"^[A-Z]{2,4}-\d{3}$")
    category: Category
    severity: Severity
    regulation: str = Field(min_length=4)
    reminder: str = Field(min_length=4)


class PatternsFile(BaseModel):
    """``_patterns.yaml``: word lists and the pattern rules that use them."""

    model_config = ConfigDict(extra="forbid")

    lists: dict[str, tuple[str, ...]]
    patterns: list[PatternEntry] = Field(min_length=1)


REQUIRED_LISTS: dict[PatternKind, tuple[str, ...]] = {
    "superlative": (
        "evaluative",
        "everyday",
        "abstract_after",
        "scope",
        "consumer_tip",
        "dimension",
        "goods_attribute",
    ),
    "rank_first": ("scope", "rank_noun", "first_noun", "competition"),
    "unique": ("scope", "unique_personal", "unique_claim"),
    "pioneer": ("scope",),
    "king": (),
    "certainty": ("certainty_effect", "certainty_lawful"),
    "cure": ("cure_verb", "disease", "disease_not", "cure_outcome", "usage", "real_care"),
    "quick_effect": ("dose", "quick_outcome"),
    "no_relapse": (),
    "skin_efficacy": ("skin_problem", "skin_verb", "skin_outcome"),
    "skin_medical": ("skin_problem", "skin_medical_verb"),
    "whitening": (),
    "hair_growth": (),
    "urgency": (),
    "medical_aesthetic": (),
    "endorsement": ("authority", "endorse_verb"),
    "efficacy_rate": (),
    "price_bait": (),
    "investment_return": ("future_time", "value_gain"),
    "fortune": ("placement", "fortune_outcome"),
    "off_platform": ("off_platform_channel",),
    "gem_natural": ("gem",),
}
"""Word lists each kind reads; the loader refuses a file that lacks one."""


def _alt(words: tuple[str, ...] | list[str]) -> str:
    return "(?:" + "|".join(sorted(map(re.escape, set(words)), key=len, reverse=True)) + ")"


@lru_cache(maxsize=1)
def _word_tags() -> dict[str, str]:
    """jieba's part-of-speech dictionary (word -> tag), loaded once."""
    tokenizer = jieba.posseg.dt
    tokenizer.tokenizer.initialize()
    return tokenizer.word_tag_tab


Span = tuple[int, int]

GAP = "[^,不没别无未]"
"""A character allowed between a verb and its object: a negation there (去不了皱纹,
治不了颈椎病) makes the pair no claim."""


class PatternSet:
    """The compiled patterns of one ``_patterns.yaml``; :meth:`find` is thread-safe."""

    def __init__(self, patterns_file: PatternsFile) -> None:
        self.entries = tuple(patterns_file.patterns)
        lists = {name: tuple(words) for name, words in patterns_file.lists.items()}
        self.lists = lists

        def words(name: str) -> tuple[str, ...]:
            return lists.get(name, ())

        self._evaluative = frozenset(words("evaluative"))
        self._everyday = frozenset(words("everyday"))
        self._dimension = frozenset(words("dimension"))
        self._goods_attribute = re.compile(_alt(words("goods_attribute"))) if words("goods_attribute") else None
        # Time and quantity words after 最 (最后, 最近, 最多): a word that sounds like one is it.
        self._everyday_sounds = frozenset(pinyin_key(w) for w in ("后", "近", "初", "终", "早", "晚", "多", "少"))
        self._scope_before = (
            re.compile(_alt(words("scope")) + f"[^,]{{0,{SCOPE_GAP_CHARS}}}$") if words("scope") else None
        )
        self._abstract_after = (
            re.compile("[^,]?的?" + _alt(words("abstract_after"))) if words("abstract_after") else None
        )
        self._consumer_tip = re.compile(_alt(words("consumer_tip"))) if words("consumer_tip") else None
        scope = _alt(words("scope")) if words("scope") else "(?!)"
        rank_noun = _alt(words("rank_noun")) if words("rank_noun") else "(?!)"
        first = "(?:第一|第1|no\\.?1|top\\.?1|冠军)"
        self._rank_first = re.compile(
            f"(?:{scope}|{rank_noun})[^,]{{0,4}}?{first}"
            + (f"|第一{_alt(words('first_noun'))}" if words("first_noun") else "")
            + "|(?:是|排|数|拿|位列|位居|稳居|荣获|常年)第一(?:的|名)?(?=,|$|了|呢|吧|哦)"
            + "|(?:连续|蝉联)[^,]{0,4}?(?:第一|冠军)|第一梯队|排(?:在)?最前(?:头|面)"
        )
        self._competition = re.compile(_alt(words("competition"))) if words("competition") else None
        self._unique = re.compile(
            f"(?:{scope}|是|为|目前|现在)唯一"
            + (f"|唯一{_alt(words('unique_claim'))}" if words("unique_claim") else "")
        )
        self._unique_personal = re.compile("的?" + _alt(words("unique_personal"))) if words("unique_personal") else None
        self._pioneer = re.compile(
            f"{scope}首(?:家|创|个|款|发|推|台|批|位)|首创|首家(?!店|门店|分店)|(?:是|为)首(?:个|款|家|位)"
            "|第一家(?=[^,]{0,3}(?:做|推出|研发|生产|发明|研制|拿到|获得|开发|引进))"
        )
        self._king = re.compile(
            "(?<![百万]兽)(?<![,])(?:之王|之皇)|(?:里|中)的(?:王者|霸主)|王者级|霸主级|机皇|(?:宇宙|史诗|天花板|神仙)级"
            "|(?<![屋房顶])天花板(?!上|漏|掉|灯|吊|装|刷|高|有|太|很|那|的高|裂|发霉)"
        )
        self._certainty = (
            re.compile(
                "(?:100%|百分百)(?:的)?"
                + _alt(words("certainty_effect"))
                + "|(?:效果|有效率|成功率|治愈率|满意度)(?:是|达到|高达|能达到)?(?:100%|百分百)"
            )
            if words("certainty_effect")
            else None
        )
        self._certainty_lawful = (
            re.compile("(?:100%|百分百)的?" + _alt(words("certainty_lawful"))) if words("certainty_lawful") else None
        )
        disease_words = words("disease")
        disease = (
            f"(?:{_alt(disease_words)}|[\u4e00-\u9fff]{{1,3}}?(?:病|炎|癌|瘤|结石|溃疡)(?!状|毒|人|号|假|房|床|历|友|情|热))"
            if disease_words
            else "(?!)"
        )
        self._disease_not = frozenset(words("disease_not"))
        self._disease = re.compile(disease)
        cure_verb = _alt(words("cure_verb")) if words("cure_verb") else "(?!)"
        self._cure_forward = re.compile(f"{cure_verb}{GAP}{{0,{CURE_GAP_CHARS}}}?{disease}")
        self._cure_outcome = (
            re.compile(
                f"{disease}[^,]{{0,{OUTCOME_GAP_CHARS}}}?(?:就|都|也|全|彻底|马上|立马)?{_alt(words('cure_outcome'))}"
            )
            if words("cure_outcome")
            else None
        )
        self._usage = re.compile(_alt(words("usage"))) if words("usage") else None
        self._real_care = re.compile(_alt(words("real_care"))) if words("real_care") else None
        dose = _alt(words("dose")) if words("dose") else "(?!)"
        self._quick = re.compile(
            f"(?:[一两三四五六七八九十几半1-9][0-9]*){dose}(?:就|即|便|就能|就可以|就会|内|之内|以内)?"
            + (_alt(words("quick_outcome")) if words("quick_outcome") else "(?!)")
        )
        self._no_relapse = re.compile(
            "(?:永不|再也不|再不|绝不|不会再|不再|不会|不)(?:复发|反复|犯病|反弹)"
            # Goods said to replace medicine (《广告法》第十七条; 第十八条第一款第（三）项).
            "|(?:降压药|降糖药|降脂药|胰岛素|西药)[^,]{0,6}?(?:停掉|停了|可以停|能停|不用吃了|不用再吃|减半)"
            "|(?:保证|一定|肯定)长高|长高[0-9]+(?:公分|厘米|cm)"
        )
        skin = _alt(words("skin_problem")) if words("skin_problem") else "(?!)"
        skin_noun = f"(?:{skin})(?!马|点狗|斓|驳|纹面料|料)"
        self._skin_forward = re.compile(
            f"{_alt(words('skin_verb'))}{GAP}{{0,3}}?{skin_noun}" if words("skin_verb") else "(?!)"
        )
        self._skin_backward = re.compile(
            f"{skin_noun}[^,]{{0,5}}?(?:都|全|就|也|能|会|一下|马上)?{_alt(words('skin_outcome'))}"
            if words("skin_outcome")
            else "(?!)"
        )
        self._skin_medical = re.compile(
            f"{_alt(words('skin_medical_verb'))}{GAP}{{0,3}}?{skin_noun}" if words("skin_medical_verb") else "(?!)"
        )
        self._whitening = re.compile(
            "一抹(?:就)?白|白(?:[一两三几0-9]|好几)个(?:度|色号)|(?:皮肤|脸|肤色|肌肤|整个人)[^,]{0,6}?(?:越来越白|变白了?|白了一圈)"
            "|美白淡斑|淡斑美白|亮白肤色|美白效果"
            # Sunscreen and firming are special-use or evaluated efficacies too (条例第十六条; 分类目录).
            "|防晒指数|spf ?[0-9]+|不用(?:再)?涂防晒|晒不黑|紧致提拉|提拉紧致|提亮[^,]{0,2}个色号|白成[^,]{0,3}皮"
        )
        self._hair_growth = re.compile(
            "(?:长出|长出来|生出|冒出)了?(?:新的?)?(?:头发|毛发|发根|新发|绒毛)|(?:头发|发际线)[^,]{0,4}?长(?:回来|出来)"
            "|(?:不掉发|不脱发|掉发少了|脱发少了|固发|育发)|头发变(?:多|密|浓密)|变多变密|多长[^,]{0,4}?根"
        )
        self._urgency = re.compile(
            "再不(?:买|抢|拍|下单|入手)(?:就)?(?:没了|没有了|涨价|恢复|来不及|亏了)"
            "|(?:全民|全场|全部|人人)免单|下单(?:的)?全部免费|全部免费送"
            "|最后[0-9一两三四五六七八九十几]+(?:分钟|秒).{0,12}?(?:涨价|恢复|原价|下架|抢|拍|优惠|价格|下单|结束|没了)"
            "|仅此一次|再也没有这个价|以后再也没有这个价|(?:明天|下播|过了今天|一会儿|之后|马上)(?:就)?(?:恢复原价|涨回|涨价)"
            "|倒计时[^,]{0,8}?(?:恢复|涨价|抢|原价|结束)|最后一次(?:这个价|给这个价)"
            "|(?:(?:不|再不)(?:拍|买|抢|下单))?(?:明天|过了今晚|过了十二点|[0-9]+分钟以?后|下一波|卖完)[^,]{0,4}?(?:就)?"
            "(?:恢复|涨价|贵|这个价就没了)"
        )
        # A cosmetic likened to a medical-aesthetic procedure implies a medical effect
        # (条例第三十七条): 跟做了热玛吉一样, 涂抹版的玻尿酸, 不用去医院打水光.
        aesthetic = "(?:热玛吉|水光针?|玻尿酸|光子嫩肤|超声刀|医美|微整|肉毒素?|打了一针|线雕)"
        self._medical_aesthetic = re.compile(
            f"(?:跟|和|像|堪比|媲美|比|不用去?(?:医院)?打?|省了|替代|平替|涂抹版的?){aesthetic}"
            f"|{aesthetic}[^,]{{0,6}}?(?:一样|差不多|同款效果|都比不上|的效果)"
        )
        # Named authority + a word of endorsement in one clause (三甲医院的主任医师都推荐,
        # 教育部推荐的, 航天员吃的): 《广告法》第九条第（二）项、第十六条第一款第（四）项.
        self._endorsement = re.compile(
            f"{_alt(words('authority'))}[^,]{{0,10}}?{_alt(words('endorse_verb'))}"
            if words("authority") and words("endorse_verb")
            else "(?!)"
        )
        # 《广告法》第十六条第一款第（二）项: no 治愈率、有效率 in health advertising.
        self._efficacy_rate = re.compile(
            "(?:有效率|治愈率|好转率|显效率|总有效率|临床有效率)(?:是|有|达到|高达|能达到|超过)?(?:[0-9.]+%|[0-9]+成)"
        )
        # 《明码标价和禁止价格欺诈规定》（2022）第十九条: (二) low price to lure, higher price at
        # checkout; (三) a fictitious discount (raise the price first, then cut it; a reference
        # price never charged); (四) misleading price talk (a loss on every order).
        self._price_bait = re.compile(
            "先(?:把价格?)?(?:涨|调|提|标)(?:到|成|高)?[^。]{0,14}?(?:打[0-9一二三四五六七八九几半]+折|[0-9一二三四五六七八九]折|降价|再减|半价)"
            "|(?:从来|从没|从未|根本)(?:没|没有)?卖过(?:这个|那个)价|其实平时也是这个价|平时也是这个价"
            "|(?:结算|付款|确认订单)的?时候[^,]{0,8}?(?:加|补|收|多)[^,]{0,8}?(?:费|差价)|再补(?:个)?差价"
            "|卖完(?:就|即)?恢复原价|(?:就|马上|立刻)改价|手慢无"
            "|(?:0|零)元购|拍下0元|等于白送|(?:全年|年度|历史|今年)最低价|低到亏本|亏本给你|(?:卖|拍|出)一单亏|(?:我|我们|老板)自己贴钱|亏本(?:卖|甩|价|冲量)"
        )
        # 《广告法》第二十五条第（一）项: no guaranteed or implied future return of collectibles.
        self._investment_return = re.compile(
            f"{_alt(words('future_time'))}[^,]{{0,10}}?{_alt(words('value_gain'))}|二手[^,]{{0,6}}?(?:炒到|溢价|翻)"
            if words("future_time") and words("value_gain")
            else "(?!)"
        )
        self._investment_phrase = re.compile("一年一个价|买到就是赚|等于买原始股|放着就是钱|有价无市|一笔财富")
        # 《广告法》第九条第（八）项 (迷信): placing or wearing an object brings luck, love,
        # children or exam results (摆上这对摆件夫妻和睦, 戴上三个月内必脱单).
        self._fortune = re.compile(
            f"{_alt(words('placement'))}[^。]{{0,14}}?{_alt(words('fortune_outcome'))}"
            if words("placement") and words("fortune_outcome")
            else "(?!)"
        )
        self._fortune_phrase = re.compile("煞气|财位|财不外流|财才不会流")
        # Platform rules against 站外导流 and 私下交易; 《网络交易监督管理办法》（2021）:
        # another channel named as where to buy, pay or get in touch.
        self._off_platform = re.compile(
            _alt(words("off_platform_channel")) if words("off_platform_channel") else "(?!)"
        )
        # GB/T 16552-2017 and GB/T 16553-2017: naturalness and the absence of treatment
        # (优化处理) must be certified, and one gem is not named as another (莫桑石就是钻石).
        gem = _alt(words("gem")) if words("gem") else "(?!)"
        self._gem_natural = re.compile(
            f"{gem}[^,]{{0,6}}?(?:是|为|都是|绝对是)(?:纯)?天然(?:的|色|紫|绿|红|蓝)"
            f"|{gem}[^,]{{0,4}}?(?:就是|等于)(?:{gem})"
        )
        self._gem_noun = re.compile(gem)
        self._gem_untreated = re.compile(
            "(?:没有|没|无|不是|没做)(?:任何|经过)?(?:优化|加热|染色|注胶|充填|烧色|合成)(?:处理)?(?=,|$|的)"
            "|颜色不是(?:烧|染|加热)"
        )
        self._finders: dict[PatternKind, Callable[[str], Iterator[Span]]] = {
            "superlative": self._find_superlatives,
            "rank_first": self._find_rank_first,
            "unique": self._find_unique,
            "pioneer": lambda text: _spans(self._pioneer, text),
            "king": lambda text: _spans(self._king, text),
            "certainty": self._find_certainty,
            "cure": self._find_cures,
            "quick_effect": self._find_quick,
            "no_relapse": lambda text: _spans(self._no_relapse, text),
            "skin_efficacy": self._find_skin,
            "skin_medical": lambda text: _spans(self._skin_medical, text),
            "whitening": lambda text: _spans(self._whitening, text),
            "hair_growth": lambda text: _spans(self._hair_growth, text),
            "urgency": lambda text: _spans(self._urgency, text),
            "medical_aesthetic": lambda text: _spans(self._medical_aesthetic, text),
            "endorsement": lambda text: _affirmed_spans(self._endorsement, text),
            "efficacy_rate": lambda text: _spans(self._efficacy_rate, text),
            "price_bait": lambda text: _spans(self._price_bait, text),
            "investment_return": lambda text: _affirmed_spans(self._investment_return, text, self._investment_phrase),
            "fortune": lambda text: _affirmed_spans(self._fortune, text, self._fortune_phrase),
            "off_platform": lambda text: _spans(self._off_platform, text),
            "gem_natural": self._find_gem_natural,
        }
        self._self_scope = re.compile(_alt(words("self_scope"))) if words("self_scope") else None
        self._cited = re.compile(_alt(words("cited_source"))) if words("cited_source") else None
        self._market_scope = re.compile(scope)

    def find(self, text: str) -> list[tuple[PatternEntry, int, int]]:
        """``(entry, start, end)`` for every pattern hit in normalized ``text``."""
        hits = []
        for entry in self.entries:
            for start, end in self._finders[entry.kind](text):
                hits.append((entry, start, end))
        return hits

    # -- absolute claims ---------------------------------------------------------------

    def _find_superlatives(self, text: str) -> Iterator[Span]:
        """最 + a word that grades the goods (最耐磨, 全国最大); not 最近, 最后, 最好先…,
        最重要的是, 最大的优点, 最佳食用时间."""
        tags = _word_tags()
        position = text.find("最")
        while position >= 0:
            after = position + 1
            while after < len(text) and text[after] == "最":  # 最最最划算
                after += 1
            span = self._superlative_at(text, position, after, tags)
            if span is not None:
                yield span
            position = text.find("最", after)

    def _superlative_at(self, text: str, at: int, after: int, tags: dict[str, str]) -> Span | None:
        clause_end = text.find(CLAUSE_MARK, after)
        rest = text[after : len(text) if clause_end < 0 else clause_end]
        if not rest:
            return None
        word = ""
        for size in range(min(SUPERLATIVE_LOOKAHEAD_CHARS, len(rest)), 0, -1):
            candidate = rest[:size]
            if candidate in self._evaluative or candidate in self._everyday or candidate in tags:
                word = candidate
                break
        if not word:
            return None
        scoped = self._scope_before is not None and self._scope_before.search(text, 0, at) is not None
        tail = rest[len(word) :]
        if self._consumer_tip and self._consumer_tip.match(tail.removeprefix("的")):
            return None  # 最佳食用时间, 最简单的方法: consumer tips (guide art. 5(2))
        if tail.startswith(("的时候", "时候", "的时刻")):
            return None  # 最慢的时候: when, not what the goods are
        if tail.startswith(("的地方是", "的部分是", "的一点是", "的一幕")) and not scoped:
            return None  # 最好看的地方是结尾: the best part of one thing, compared with nothing else (guide art. 5(1))
        if word == "好" and tail and tail[0] not in "的用看吃喝穿闻听卖了" and not tail.startswith("之一"):
            return None  # 最好 + a verb is advice (你最好先量一下)
        if re.match("[^,]{0,2}(?:[0-9零两几半]|零下|[一二三四五六七八九十][米斤克度块元个天年])", tail):
            return None  # a range in a specification: 最高48度, 最长1米5, 最低气温零下12度
        before = text[max(0, at - 3) : at]
        if any(mark in before for mark in ("档", "挡", "以后", "之后", "时候")):
            return None  # 第一档最轻 (a setting), 第三泡以后最好喝 (when to drink it)
        if word in ("大", "小") and self._abstract_after and self._abstract_after.match(tail) and not scoped:
            return None  # 最大的优点, 最大的是XL码
        if word in self._everyday or pinyin_key(word) in self._everyday_sounds:
            return None  # 最厚一天 is 最后一天 misheard
        if word in self._dimension and not scoped:
            attribute = self._goods_attribute is not None and self._goods_attribute.search(text, 0, at)
            asserted = _GOODS_SUBJECT.search(text, 0, at) is not None
            return (at, after + len(word)) if attribute or asserted else None
        if word in self._evaluative:
            return (at, after + len(word))
        if tags.get(word, "").startswith("a") or (scoped and tags.get(word, "") in ("v", "vn", "an")):
            return (at, after + len(word))
        return None

    def _find_rank_first(self, text: str) -> Iterator[Span]:
        """销量第一, 行业第一, 第一品牌, 是第一的, 连续五年第一; not among pupils or runners."""
        for start, end in _spans(self._rank_first, text):
            clause = _clause(text, start, end)
            if self._competition is not None and self._competition.search(clause):
                continue
            yield start, end

    def _find_unique(self, text: str) -> Iterator[Span]:
        """是唯一, 国内唯一, 唯一一款, 唯一能…; not 唯一的缺点, 我唯一的爱好."""
        for match in self._unique.finditer(text):
            at = text.find("唯一", match.start())
            if at > 0 and text[at - 1] in "我你他她" and match.start() == at:
                continue
            if self._unique_personal is not None and self._unique_personal.match(text, at + 2):
                continue
            yield match.start(), match.end()

    def _find_certainty(self, text: str) -> Iterator[Span]:
        """100% + an effect or a guarantee; not 100%纯棉 (a label) or 百分百用心 (attitude)."""
        if self._certainty is None:
            return
        for match in self._certainty.finditer(text):
            if self._certainty_lawful is not None and self._certainty_lawful.match(text, match.start()):
                continue
            yield match.start(), match.end()

    # -- medical and cosmetic claims ---------------------------------------------------

    def _is_disease(self, word: str) -> bool:
        return not any(word.endswith(not_disease) or not_disease in word for not_disease in self._disease_not)

    def _find_gem_natural(self, text: str) -> Iterator[Span]:
        """这颗蓝宝石是天然的, 莫桑石就是钻石; 没有任何优化 (a claim of no treatment), but not
        a question or a denial inside the span (是不是天然的)."""
        yield from _affirmed_spans(self._gem_natural, text)
        if self._gem_noun.search(text) is None:
            return  # 枸杞不是染色的: the gem standards are about gems
        for start, end in _spans(self._gem_untreated, text):
            if not _QUESTION_BEFORE.search(text, max(0, start - 3), start + 1):
                yield start, end

    def _find_quick(self, text: str) -> Iterator[Span]:
        """一盒见效, 三天痊愈; not when real care came before it (做了两个月康复治疗才好)."""
        for start, end in _spans(self._quick, text):
            clause_end = text.find(CLAUSE_MARK, end)
            if not self._real_care_in(text, len(text) if clause_end < 0 else clause_end):
                yield start, end

    def _real_care_in(self, text: str, until: int) -> bool:
        """Real medical care named in ``text[:until]``, not waved away (不用去医院)."""
        if self._real_care is None:
            return False
        return any(
            not re.search("(?:不用|不必|不需要|不)(?:再)?(?:去)?$", text[max(0, care.start() - 4) : care.start()])
            for care in self._real_care.finditer(text, 0, until)
        )

    def _find_cures(self, text: str) -> Iterator[Span]:
        """A cure verb on a disease (能治颈椎病, 根除风湿), or a disease gone after using
        the goods (喝了这个胃病就好了); not when a doctor or medicine did it."""
        for match in self._cure_forward.finditer(text):
            disease = self._disease.search(text, match.start(), match.end())
            if disease and self._is_disease(disease.group()):
                yield match.start(), match.end()
        if self._cure_outcome is None:
            return
        for match in self._cure_outcome.finditer(text):
            disease = self._disease.match(text, match.start())
            if disease is None or not self._is_disease(disease.group()):
                continue
            if self._real_care is not None and self._real_care.search(text, 0, match.start()):
                continue
            if self._usage is not None and self._usage.search(text):
                yield match.start(), match.end()

    def _find_skin(self, text: str) -> Iterator[Span]:
        """A verb of removing on a skin or hair problem (祛痘, 淡化细纹, 修复屏障), or the
        problem gone (黄褐斑淡了, 痘坑都能填平)."""
        yield from _spans(self._skin_forward, text)
        yield from _spans(self._skin_backward, text)

    # -- lawful uses of absolute terms ----------------------------------------------

    def lawful_absolute(self, text: str, start: int, end: int) -> bool:
        """True when an absolute term at ``text[start:end]`` is a lawful use the SAMR
        2023 guide (art. 5) names: a comparison inside the speaker's own shop with no
        market scope (这是我们店里卖得最好的一款), or a ranking that names its source
        (根据平台榜单数据…排第一; 《广告法》第十一条), or a ranking among pupils or
        runners (年级第一)."""
        hit = text[start:end]
        if re.search(r"前[0-9一二三四五六七八九十]+[天日]内?的?最低(?:成交)?价", text[max(0, start - 8) : end + 4]):
            return True  # the reference price the 2022 price rules define (前七日内最低成交价), not a claim
        if self._competition is not None and self._competition.search(_clause(text, start, end)):
            return True  # 年级第一, 最佳影片, 世界杯决赛: pupils, players and prizes, not goods
        if self._market_scope.search(_NOT_MARKET_SCOPE.sub("", _clause(text, start, end))):
            return False  # 全网, 行业…: a comparison with every other seller
        if (
            ("最佳" in hit or "最好" in hit)
            and self._consumer_tip
            and self._consumer_tip.match(text, text.index("最", start) + 2)
        ):
            return True  # 最佳食用时间, 最佳赏味期: consumer tips (guide art. 5(2))
        if self._competition is not None and self._competition.search(_clause(text, start, end)):
            return True  # 年级第一, 本赛季最佳进球: pupils and players, not goods
        ranking = any(word in hit for word in ("第一", "冠军", "第1", "no1", "top1", "首"))
        comparative = ranking or any(word in hit for word in ("最", "卖得", "销量", "之一"))
        if comparative and self._self_scope is not None:
            # The shop's own range, named in the hit's clause or the one after it
            # (这是我们店里卖得最好的一款; …销量最好的,只是我们自己店里).
            left = text.rfind(CLAUSE_MARK, 0, start)
            # …and the clause before it (我们自己家这几款水壶里面,这个容量最大).
            left = text.rfind(CLAUSE_MARK, 0, left) + 1 if left > 0 else 0
            right = text.find(CLAUSE_MARK, end)
            right = len(text) if right < 0 else text.find(CLAUSE_MARK, right + 1)
            if self._self_scope.search(text, left, len(text) if right < 0 else right):
                return True
        if ranking and self._cited is not None and self._cited.search(text):
            return True
        return (
            ranking
            and self._competition is not None
            and self._competition.search(_clause(text, start, end)) is not None
        )


_NOT_MARKET_SCOPE = re.compile("世界杯|世界纪录|(?:品牌|公司|我们家?)?历史上")
"""Words that contain a scope but compare nothing with other sellers (世界杯决赛, 本品牌历史上)."""

_GOODS_SUBJECT = re.compile(
    "(?:这款|这个产品|这个牌子|这个品牌|我们家|咱家|咱们家|我家|本品|本产品|它)[^,]{0,6}?(?:是|就是|绝对是|肯定是|算是)$"
)
"""The goods as the subject of a bare dimension (这款产品是最大的; not 这个项目的优先级最高)."""


_INNER_DENIAL = re.compile("不|没|别|未|非|无|吗|\\?")
"""Inside a span joining two parts (authority ... 推荐), a denial or a question turns it
around: 医生没推荐过, 以后值不值钱, 戴了不会转运, 是不是天然的."""

_QUESTION_BEFORE = re.compile("有没|是不")
_DENIAL_AFTER = re.compile("[^,]{0,2}?(?:没关系|没有关系|无关|没用|没有用|是假的|不可能)")


def _affirmed_spans(pattern: re.Pattern[str], text: str, phrases: re.Pattern[str] | None = None) -> Iterator[Span]:
    """Spans of ``pattern`` with no denial inside or right after, and every span of the
    fixed ``phrases`` (有价无市 holds its own 无)."""
    if phrases is not None:
        yield from _spans(phrases, text)
    for start, end in _spans(pattern, text):
        if not _INNER_DENIAL.search(text, start + 1, end) and not _DENIAL_AFTER.match(text, end):
            yield start, end


def _spans(pattern: re.Pattern[str], text: str) -> Iterator[Span]:
    for match in pattern.finditer(text):
        if match.end() > match.start():
            yield match.start(), match.end()


def _clause(text: str, start: int, end: int) -> str:
    left = text.rfind(CLAUSE_MARK, 0, start) + 1
    right = text.find(CLAUSE_MARK, end)
    return text[left : len(text) if right < 0 else right]
