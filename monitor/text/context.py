"""Context rules applied to a lexicon hit in its utterance (normalized text).

- :func:`is_negated`: a negation cue shortly before the hit, or a denial shortly after
  it, in the same clause ("不是足金", "不保证一定升值", "最低价是不可能的").
- :func:`is_disowned` (called by :func:`is_negated`): the speaker names the claim only to
  refuse, deny, quote, question or report it ("加微信这种事我们不做", "美白?它没有那个备案").
- :func:`has_claim_cue`: an assertive word near the hit ("绝对", "保证", "100%"), which
  supports a hit that would be too ambiguous alone.
- :func:`adjust_severity`: certified attributes lower, room category and repetition raise.

Offsets are in normalized text; clauses are separated by ``,`` (see normalize.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import chain

from monitor.room import RoomContext
from monitor.taxonomy import Severity
from monitor.text.lexicon import Rule
from monitor.text.normalize import CLAUSE_MARK
from monitor.text.pinyin import pinyin_key

NEGATION_WINDOW_CHARS = 5
"""Most characters allowed between a negation cue and the hit it negates (不是真正的足金)."""
DISBELIEF_WINDOW_CHARS = 10
"""Window for cues that dismiss a claim as something not to believe (别信什么包治百病)."""
CUE_WINDOW_CHARS = 8
"""Window around a hit in which an assertive cue supports it."""
REPEAT_RAISE_AFTER = 2
"""A rule that already fired this many times in the room is raised one severity level."""

# Cues that negate what follows them.
_PRE_NEGATIONS = (
    "不是", "并不是", "并非", "绝非", "绝不", "决不", "绝对不", "坚决不",
    "并没有", "没有", "没", "不能保证", "不保证", "无法保证", "不敢保证",
    "不敢说", "不能说", "不会说", "不可以说", "不要说", "不能讲", "不说", "不讲", "不会", "不可能", "不算",
    "不具有", "不具备", "不含", "不承诺", "不做", "不搞", "不用说", "不能", "不可以", "不允许", "不得",
    "禁止", "严禁", "请勿", "不要", "别", "从不", "从来不", "无法", "不存在", "不代表", "不等于", "谈不上",
    "算不上", "称不上", "达不到", "不属于", "哪有什么", "哪有", "哪来的", "哪里有", "所谓",
    "不让说", "不让", "不建议", "不卖什么", "不卖",
    "不提供", "不叫", "不这么叫", "不一定是", "不一定", "未必是", "未必",
    "不", "非", "未", "无", "勿",
)  # fmt: skip
# Cues that dismiss a claim as untrue even from further away.
_DISBELIEF = (
    "不要相信", "不要信", "别相信", "别信", "不信", "不可信", "骗人的", "都是骗人", "不要被", "别被",
    "不要听", "别听", "智商税",
)  # fmt: skip
# After the hit: the speaker denies it, or talks about the word rather than the goods.
_POST_NEGATIONS = (
    "是假的", "都是假的", "是骗人的", "不可能", "做不到", "谈不上", "算不上", "称不上", "不敢说", "不敢保证",
    "不能保证", "保证不了", "不存在", "不靠谱", "是违规的", "是违法的", "违规", "违法", "不能说", "不能讲",
    "不可以说", "是不对的", "不是真的", "达不到", "没有的", "没有这回事", "都是虚的", "这个叫法", "这种叫法",
    "这个说法", "这种说法", "这个词", "这种词", "这几个字", "这种话", "这样的话", "之类的话", "一类的词",
    "那一套", "这一套", "的广告", "的宣传", "的说法", "的话术", "是噱头", "是套路", "倒不一定", "不一定", "未必",
)  # fmt: skip
# "不要犹豫" urges; it negates nothing that follows.
_URGING_AFTER_NEGATION = ("犹豫", "错过", "等了", "担心", "着急", "客气", "怕", "纠结", "眨眼", "走开", "走")

CLAIM_CUES = (
    "绝对", "保证", "一定", "肯定", "包你", "保你", "真正", "正宗", "纯", "100%", "百分百", "稳", "必定",
    "必然", "铁定", "妥妥",
)  # fmt: skip

_SINGLE_CHAR_NEGATORS = frozenset(c for c in _PRE_NEGATIONS if len(c) == 1)


class _SoundCues:
    """Cues matched on fuzzy pinyin keys, so that a misheard cue (步是 for 不是, 别心 for
    别信) still counts; a match must keep at least one character of the cue in place,
    so a word that only shares the sound (金子 for 禁止) does not. Single-character cues
    are left out: one syllable alone has too many innocent homophones.
    """

    def __init__(self, cues: tuple[str, ...]) -> None:
        self._cues_by_key: dict[str, list[str]] = {}
        for cue in cues:
            if len(cue) > 1:
                self._cues_by_key.setdefault(pinyin_key(cue), []).append(cue)
        alternation = sorted(map(re.escape, self._cues_by_key), key=len, reverse=True)
        self._pattern = re.compile("|".join(alternation))

    def finditer(self, text: str, key: str, low: int = 0, high: int | None = None) -> Iterator[re.Match[str]]:
        """Cue matches in ``key[low:high]`` (``key`` is ``pinyin_key(text)``)."""
        for match in self._pattern.finditer(key, low, len(key) if high is None else high):
            heard = text[match.start() : match.end()]
            if any(h == c for cue in self._cues_by_key[match.group()] for h, c in zip(heard, cue, strict=True)):
                yield match

    def search(self, text: str, key: str, low: int = 0, high: int | None = None) -> re.Match[str] | None:
        return next(self.finditer(text, key, low, high), None)


_PRE_SOUNDS = _SoundCues(_PRE_NEGATIONS)
_PRE_SINGLE = re.compile("|".join(map(re.escape, _SINGLE_CHAR_NEGATORS)))
_DISBELIEF_SOUNDS = _SoundCues(_DISBELIEF)
_POST_SOUNDS = _SoundCues(_POST_NEGATIONS)
_URGING_KEYS = tuple(pinyin_key(u) for u in _URGING_AFTER_NEGATION)
_CUE_PATTERN = re.compile("|".join(sorted(map(re.escape, CLAIM_CUES), key=len, reverse=True)))


def _clause_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    left = text.rfind(CLAUSE_MARK, 0, start) + 1
    right = text.find(CLAUSE_MARK, end)
    return left, len(text) if right < 0 else right


def is_negated(text: str, start: int, end: int, key: str | None = None) -> bool:
    """True if the hit ``text[start:end]`` is negated or denied within its clause.

    ``key`` is ``pinyin_key(text)`` when the caller has it already.
    """
    key = pinyin_key(text) if key is None else key
    clause_start, clause_end = _clause_bounds(text, start, end)
    window_start = max(clause_start, start - NEGATION_WINDOW_CHARS - 5)
    hit_key = key[start:end]
    pre_cues = chain(
        _PRE_SOUNDS.finditer(text, key, window_start, start), _PRE_SINGLE.finditer(text, window_start, start)
    )
    for cue in pre_cues:
        if (key[cue.end() : start] + hit_key).startswith(_URGING_KEYS):
            continue
        # Single-character negators (不, 非, 未...) bind only to what directly follows.
        allowed_gap = NEGATION_WINDOW_CHARS if cue.end() - cue.start() > 1 else 1
        if start - cue.end() <= allowed_gap:
            return True
    if _DISBELIEF_SOUNDS.search(text, key, max(clause_start, start - DISBELIEF_WINDOW_CHARS - 4), start):
        return True
    post = _POST_SOUNDS.search(text, key, end, min(clause_end, end + NEGATION_WINDOW_CHARS + 6))
    if post and post.start() - end <= NEGATION_WINDOW_CHARS:
        return True
    return is_disowned(text, start, end)


# -- disowning ---------------------------------------------------------------------------------
# The speaker names a claim only to refuse it, deny it, quote it as a banned word or report
# someone else's claim: "加微信这种事我们不做", "美白?它没有那个备案", "平台不允许说“升值”",
# "有人说能升值,大家可以举报". Normalization turns ? and “” into clause marks, so a
# questioned or quoted term stands alone between commas. These rules read the normalized
# text itself (not pinyin keys) and look at the hit's clause and its neighbours.

_SUBJECT = (
    "(?:我们家|我们|咱们|咱|我|你们|大家|平台|主播|这边|真的|今天|本来|从来|一直|确实|肯定|所以|因为"
    "|也|都|还|这个|那个|它|平台说|平台规定|规定|说)*"
)
# A refusal that ends its clause (its object is the term just named): "我们不做", "我不这么说".
# "不卖了"/"不做了" (no longer) is no refusal: "了" is not allowed after it, nor is 就/再 before.
_REFUSALS = (
    "不这么说", "不这样说", "不这么讲", "不这么卖", "不这样卖", "不这么叫", "不这样叫", "不这么宣传",
    "没这么说过", "没这么说", "没说过", "不乱说", "不乱讲", "不能说", "不能讲", "不能用", "不能叫", "不敢说",
    "不让说", "不让用", "不允许", "不支持", "不建议", "不承诺", "不做", "不说", "不讲", "不提", "不聊", "不收",
    "不卖", "不碰", "不干", "不搞", "不接", "不叫", "不用", "不懂", "不会看", "说不清楚", "说不清", "担不起", "不敢",
    "别问我", "别问", "别加", "别信", "别乱传", "别误会", "别搞混", "是违规的", "违规", "是违法的", "违法", "禁止",
    "不能这么说", "不能这么叫", "不让这么叫", "不让这么说", "没法保证", "没办法保证", "保证不了",
)  # fmt: skip
# After a word about the term ("这种事", "这两个字"), a plain "没有"/"不敢" refuses too.
_META_REFUSALS = ("没有", "没", "不敢", "不知道")
_META = (
    "这种事情", "这种事", "这类事", "这事儿", "这事", "的事情", "的事", "这个话题", "这个功效", "这个效果",
    "这个说法", "这种说法", "这两个字", "那两个字", "两个字", "这个字", "这几个字", "这个词", "这种词",
    "这种东西", "这类东西", "这种话", "这一套", "这个",
)  # fmt: skip
_TAIL = (
    "(?:的|啊|哈|呢|哦|吧|呀|嘛|过|这个东西|那个东西|这种东西|那种东西|这类东西|这个|那个|这种|那种|这些|那些"
    "|它|东西|这种话|这个词|这两个字|两个字)*"
)


def _alternation(words: tuple[str, ...]) -> str:
    return "(?:" + "|".join(sorted(map(re.escape, words), key=len, reverse=True)) + ")"


_REFUSAL = _alternation(_REFUSALS)


_HIT_REFUSED_MARK = "\x01"  # 不<term>的 / 不<term> stand in the refused-words position
_HIT_MARK = "\x02"  # the term itself, repeated in the tail ("美白美白我们不说")
_REFUSAL_AFTER = re.compile(
    f"(?P<meta>(?:{_alternation(_META)}|{_HIT_REFUSED_MARK})*)的?{_SUBJECT}"
    f"(?P<refusal>{_REFUSAL}|{_alternation(_META_REFUSALS)})(?:{_TAIL}|{_HIT_MARK})*"
)
"""What may follow a term to its clause's end when the speaker refuses it ("美白我们不敢说").
The term is masked in the text (:func:`_mask_hit`) instead of compiled into the pattern:
building a pattern per term thrashed the ``re`` cache and took 90 % of the engine's time."""


def _mask_hit(after: str, hit: str) -> str:
    return (
        after.replace(f"不{hit}的", _HIT_REFUSED_MARK).replace(f"不{hit}", _HIT_REFUSED_MARK).replace(hit, _HIT_MARK)
    )

_NEXT_CLAUSE_REFUSAL = re.compile(f"{_SUBJECT}{_REFUSAL}{_TAIL}")
# Saying it anyway: "根治两个字我不敢说,但是…", "治疗两个字我不说,你喝完自己体会" (preterition).
_PRETERITION = re.compile(
    "但是|但|可是|不过|只说|只能说|自己体会|自己感受|自己试|你懂的|都懂|心里有数|你们就看|就看我|自己去看"
)
# A questioned term answered with a denial: "医生推荐?没有", "镇宅?它就是个铜摆件".
_DENIAL_ANSWER = re.compile(
    "(?:(?:没有|没|不是|不会|不能|不对)(?:没有|不是)?(?:的|啊|呢|哈|哦|吧)*$)"
    "|没有的事|没这回事|哪有这回事|哪有|哪来的|那不是|它没有|没有那个|我们没有那个|它就是个|它就是一个|就是个普通"
    "|它只是|只是个|就是普通|它就是普通|这个我不|这个不能说|我不知道|不知道|我也不知道"
)
_QUESTION_REFUSAL = re.compile(f"[^,]{{0,6}}?{_SUBJECT}(?:不知道|{_REFUSAL}){_TAIL}")
QUESTION_EXTRA_CHARS = 4
"""A hit's clause ending in 吗/呢/么 at most this much longer than the hit is a questioned
term ("能升值吗"); so is a term alone in its clause ("医生推荐?")."""
QUOTE_EXTRA_CHARS = 2
"""A hit's clause at most this much longer than the hit is a quoted term ("“升值”")."""
QUOTE_LIST_CLAUSE_CHARS = 6
"""Short clauses before a quoted term are a list of quoted terms ("“升值”“保值”")."""
QUOTE_LIST_MAX = 4
"""Clauses looked back over from a quoted term for what leads it."""
# A clause that ends by banning a word, right before quoted terms: "平台不允许用“升值”".
_BANS_WHAT_FOLLOWS = re.compile(
    "(?:不能说|不能讲|不能用|不能叫|不能写|不说|不讲|不让说|不让用|不让叫|不允许用|不允许说|不允许|不许说|不许用"
    "|不得用|不得使用|禁止用|禁止说|禁止使用|严禁|(?<![到有了])没有|不叫|别信|别信什么|不要信|不会写|不写|不提)"
    "(?:什么|这些|这种|像|比如)?$"
    # Or names a list of words: "纯度有三种规范写法,足金,…".
    "|(?:写法|叫法|名称|说法|俗称|名字)(?:有|是|叫)?$"
)
# Talk about the word itself, after the term (or after a list of quoted terms):
# "…这种说法", "…这两个名称", "“美白增艳”的说法吗".
_WORD_TALK = re.compile(
    "^(?:[^,]{0,5}?(?:(?:这种|这类|这些|这样的)[^,]{0,5}?(?:词|说法|话|叫法|字眼|名称|称呼)|这两个名称|这个名称|叫法|俗称)"
    "|的(?:说法|叫法)|是[^,]{0,6}的名字)"
)
# ... and right after the term: "护身符造型的书签", "足金的意思是", "跟政府推荐是两回事".
_DIRECT_TALK = re.compile(
    # ...also after a list of such terms: "美白祛斑这类功效得有特证", "防脱和生发属于特殊用途".
    "^(?:[和、跟与及][^,]{1,4}?|[^,]{0,4}?(?:这类|这种|这些|等)(?:功效|效果|宣称|用途|说法)?)?"
    "(?:造型的|图案的|的意思是|这个概念|是两回事|和[^,]{1,4}是两回事"
    # What the term means or requires, not what the goods are: "足金的标准是千分之九百九十",
    # "美白属于特殊化妆品", "祛斑要有特证" (GB 11887; 《化妆品监督管理条例》第十六条).
    "|的?(?:国家)?(?:标准|定义|要求|含义)(?:是|为|要|不|里|中)|属于(?:特殊|普通|药品|医疗|保健)|是指|指的是"
    "|(?:需要|要有|得有|必须有|必须要有)(?:特证|特字号|批文|备案|注册证|注册|资质|蓝帽))"
)
# Reading a standard or a law aloud: "国标规定足金的含金量不低于990‰", "国家标准里足金就是
# 最高的名称" (SAMR 2023 guide art. 5(3): names in national standards are no claim). A
# clause that asserts the term of the goods (这个是足金的) stays a claim.
_STANDARD_TALK = re.compile(
    "国标|国家标准|行业标准|标准里|标准中|标准规定|按标准|gb ?/?t? ?[0-9]|广告法|条例|法规|管理办法|执法指南|规定"
)
_GOODS_ASSERTED = re.compile(
    "(?:这个|这款|这条|这只|这件|这批|这对|这颗|这块|我们|咱们|咱家|我家|它|本品|本产品)[^,]{0,4}?(?:是|就是|属于|达到|都是)"
)
# Naming a topic before talking about it: "说到治疗啊,还是得去正规医院".
_TOPIC_MENTION = re.compile("(?:说到|提到|讲到|谈到|关于|至于)$")
# Talking the audience out of it: "想要美白的别拍这个", "减肥的朋友这款零食别买".
_DISSUADE = re.compile("别买|别拍|不要买|不要拍|别下单|不适合你")
# Reserved for others: "只有医疗器械才能说治疗作用".
_RESERVED = re.compile("只有[^,]{1,8}才(?:能|可以)(?:说|用|叫|宣传|写)")
# Reading a document aloud: "证书上写的是足金", "标签上写的是…", "我们这个标的是十八K".
_DOCUMENT_SAYS = re.compile(
    "(?:(?:证书|标签|吊牌|报告|发票|鉴定书|检测结果|检验结论|鉴定结论|结论|批件|注册证|备案)(?:上面|上|里面|里)?的?"
    "(?:写的是|写着|写的|标的是|标着|印的是|印着|结论是)"
    # An approved health-food function read from its registration (《保健食品注册与备案管理办法》;
    # 《保健食品功能目录》): "批准的保健功能是增强免疫力".
    "|标的是|标注的是|标着|钢印是|钢印打的是|打的钢印是|印记是|批准的|批准的(?:保健)?功能(?:是|为))$"
)
# Someone else's claim, condemned later in the utterance: "有人说这个是顶级的,我不这么说".
_REPORTED = re.compile(
    "(?:有人|有的人|别人|人家|弹幕|有的直播间|别的直播间|其他直播间|任何直播间|直播间里|有些主播|有的主播|别的主播|网上"
    "|谁跟你|谁|有个|奶奶|外婆|爷爷|老人家|老一辈|长辈)[^,]{0,6}?(?:说|讲|宣传|告诉你|冒充|发|问)"
)
# Someone else, right before the term: "有人私信你说是客服…那一定是骗子".
_SOMEONE_ELSE = re.compile("(?:有人|有的人|别人|冒充)[^,]{0,3}$")
REPORTED_WINDOW_CHARS = 16
_CONDEMNED = re.compile(
    "不是|假的|骗|别信|不对|举报|违规|违法|不允许|不这么说|没这么说|小心|别加|不认识|不负责任|没有的事|谣言|乱传|智商税"
    "|可能吗|别上当|不存在|从来没|担不起|没上过|做不到|不这么|的说法|叫法|没这个|忽悠"
)
# "我们不这么卖", "我们从来没这么说过" anywhere after the term.
_NOT_OUR_WORDS = re.compile("(?:不这么|不这样|没这么|没这样)(?:说|讲|卖|叫|宣传)")
# A wish, not a claim: "祝大家财源广进", "…长命百岁,这是过年的吉利话".
_WISH_CLAUSE = re.compile("^(?:也|再|最后|在这里)?祝")
_WISH_AFTER = re.compile("这是[^,]{0,6}(?:吉利话|祝福)")
# "别指望它升值", "不要以为戴玉就能辟邪": the clause doubts what follows.
_DISMISSALS = re.compile("别指望|不要指望|别以为|不要以为|别想着|不要想着|别迷信|不要迷信|谁说|谁跟你说|谁告诉你")
# Asking, not asserting: "是不是足金", "能不能升值".
_QUESTIONS = re.compile("是不是|有没有|能不能|会不会")


def is_disowned(text: str, start: int, end: int) -> bool:
    """True if the speaker names the claim ``text[start:end]`` only to refuse, deny,
    quote, question or report it (see the patterns above)."""
    clause_start, clause_end = _clause_bounds(text, start, end)
    hit = text[start:end]
    before, after = text[clause_start:start], text[end:clause_end]
    clause_len = clause_end - clause_start
    next_start = clause_end + 1
    next_end = text.find(CLAUSE_MARK, next_start)
    next_clause = text[next_start:] if next_end < 0 else text[next_start:next_end]
    rest = text[next_start:]

    # Questions: "有没有优化" (A-not-A around the hit), "是不是足金".
    if text[start] in "不没" and start > 0 and end > start + 1 and text[start - 1] == text[start + 1]:
        return True
    if _QUESTIONS.search(before[-(NEGATION_WINDOW_CHARS + 3) :]):
        return True
    if _DISMISSALS.search(before[-DISBELIEF_WINDOW_CHARS - 4 :]):
        return True
    if _DOCUMENT_SAYS.search(before) or _RESERVED.search(before) or _TOPIC_MENTION.search(before):
        return True
    previous_start = text.rfind(CLAUSE_MARK, 0, max(0, clause_start - 1)) + 1
    if not _GOODS_ASSERTED.search(before) and (
        _STANDARD_TALK.search(before)
        or (clause_start > 0 and _STANDARD_TALK.search(text, previous_start, clause_start))
    ):
        return True
    if _DIRECT_TALK.search(after) or _DISSUADE.search(after):
        return True
    not_ours = _NOT_OUR_WORDS.search(text, end)
    if not_ours and not _PRETERITION.search(text, not_ours.end()):
        return True

    # A refusal ending this clause or the next short one.
    same = _REFUSAL_AFTER.fullmatch(_mask_hit(after, hit))
    refused = same and (same.group("meta") or same.group("refusal") not in _META_REFUSALS)
    if refused and not _PRETERITION.search(rest):
        return True
    refused_next = next_clause and _NEXT_CLAUSE_REFUSAL.fullmatch(next_clause)
    if refused_next and not _PRETERITION.search(text, next_start + len(next_clause)):
        return True

    # A questioned term answered with a denial: "美白?它没有那个备案".
    questioned = clause_len - (end - start) <= 1 or (
        clause_len - (end - start) <= QUESTION_EXTRA_CHARS and text[clause_end - 1] in "吗呢么"
    )
    denied = next_clause and (_DENIAL_ANSWER.match(next_clause) or _QUESTION_REFUSAL.fullmatch(next_clause))
    if questioned and denied and not _PRETERITION.search(text, next_start + len(next_clause)):
        return True

    # Talk about the word: "…这种说法", "…的意思是", "…造型的书签".
    if _WORD_TALK.search(after):
        return True

    # A quoted term (alone in its clause, maybe after a list of quoted terms) led by a ban,
    # a document, or a report that is condemned later.
    if clause_len - (end - start) <= QUOTE_EXTRA_CHARS:
        first = clause_start
        for _ in range(QUOTE_LIST_MAX):
            if first == 0:
                break
            lead_start = text.rfind(CLAUSE_MARK, 0, first - 1) + 1
            lead = text[lead_start : first - 1]
            if _BANS_WHAT_FOLLOWS.search(lead) or _DOCUMENT_SAYS.search(lead):
                return True
            if _REPORTED.search(lead) and _CONDEMNED.search(text, end):
                return True
            if len(lead) > QUOTE_LIST_CLAUSE_CHARS:
                break
            first = lead_start
        following = next_start
        for _ in range(QUOTE_LIST_MAX):
            if following > len(text):
                break
            following_end = text.find(CLAUSE_MARK, following)
            following_end = len(text) if following_end < 0 else following_end
            clause = text[following:following_end]
            if _WORD_TALK.search(clause) or _DIRECT_TALK.search(clause):
                return True
            if len(clause) > QUOTE_LIST_CLAUSE_CHARS:
                break
            following = following_end + 1

    # Someone else's claim, condemned later.
    lead_start = text.rfind(CLAUSE_MARK, 0, max(0, clause_start - 1)) + 1
    reported = (
        _REPORTED.search(text, max(clause_start, start - REPORTED_WINDOW_CHARS), start)
        or _SOMEONE_ELSE.search(before)
        or (
            clause_start > 0
            and re.search("说$", text[lead_start : clause_start - 1])
            and _REPORTED.search(text, lead_start, clause_start - 1)
        )
    )
    if reported and _CONDEMNED.search(text, end):
        return True

    # A wish: "祝大家…财源广进".
    clauses_back = text[:clause_end].split(CLAUSE_MARK)[-3:]
    return any(_WISH_CLAUSE.match(c) for c in clauses_back) or _WISH_AFTER.search(text, end) is not None


_DENIALS = (
    *_DISBELIEF, "不能保证", "不保证", "无法保证", "不敢保证", "不承诺", "并不能", "并不会", "不能说", "不能讲",
    "不可以说", "广告法", "是假的", "不可能", "不能代替", "不能替代", "代替不了", "替代不了", "不是药",
    "没有任何功效", "没有这个功效", "不具备", "这种说法", "这个说法", "这种叫法", "哪有什么",
    "不一定是", "未必是", "倒不一定",
    # Reading a standard aloud (国标规定足金…): what the standard says, not what the goods are.
    "国标", "国家标准", "行业标准", "标准规定",
)  # fmt: skip
_DENIAL_SOUNDS = _SoundCues(_DENIALS)


def denies_claim(text: str) -> bool:
    """True if the utterance disowns a claim as a whole ("我们不能保证…", "广告法不让说…").

    Used for classifier alerts, which have no span that a window could negate.
    Matched on pinyin keys, like the negation cues.
    """
    return _DENIAL_SOUNDS.search(text, pinyin_key(text)) is not None


# A contact channel named alone is everyday talk ("我妈在微信上给我发消息"); next to an
# invitation (加, 联系, 私, 找我, 扫, 转, 号, 见…) it is a lure off the platform. Such
# hits (lexicon entries marked needs_context) take these words as their claim cues.
_CONTACT_CHANNEL = re.compile("(?:微信|薇信|徽信|维信|威信|v信|vx|wx|微x|绿泡泡|qq|企微|企业微信)(?:群|群里)?")
SOLICITATION_CUES = (
    "加", "联系", "私", "找我", "搜", "扫", "转", "号", "备注", "下单", "跟我买", "跟我说", "跟我聊", "发你", "发给你",
    "发个", "给你", "见", "走", "上付", "里付", "付款", "付钱", "红包", "二维码", "扣", "打个", "名字", "同名", "好友",
    "首字母", "拼音",
)  # fmt: skip
_SOLICITATION_PATTERN = re.compile("|".join(sorted(map(re.escape, SOLICITATION_CUES), key=len, reverse=True)))


def has_claim_cue(text: str, start: int, end: int) -> bool:
    """True if an assertive cue word stands within :data:`CUE_WINDOW_CHARS` of the hit
    (for a contact channel such as 微信: an invitation word, see :data:`SOLICITATION_CUES`)."""
    clause_start, clause_end = _clause_bounds(text, start, end)
    window = text[max(clause_start, start - CUE_WINDOW_CHARS) : start] + CLAUSE_MARK
    window += text[end : min(clause_end, end + CUE_WINDOW_CHARS)]
    if _CUE_PATTERN.search(window):
        return True
    return bool(_CONTACT_CHANNEL.fullmatch(text[start:end].lower()) and _SOLICITATION_PATTERN.search(window))


def is_certified(rule: Rule, matched_terms: tuple[str, ...], context: RoomContext) -> bool:
    """True if the room's current product has this claim certified (term or category)."""
    if not context.certified:
        return False
    certified = {c.strip().lower() for c in context.certified}
    return bool(certified & {rule.category.value, *(t.lower() for t in matched_terms)})


def adjust_severity(default: Severity, *, certified: bool, room_match: bool, repeats: int) -> Severity:
    """Severity after context: certified -> ``info``; room category and repetition raise."""
    if certified:
        return Severity.INFO
    steps = int(room_match) + int(repeats >= REPEAT_RAISE_AFTER)
    return default.raised(steps)
