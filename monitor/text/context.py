"""Context rules applied to a lexicon hit in its utterance (normalized text).

- :func:`is_negated`: a negation cue shortly before the hit, or a denial shortly after
  it, in the same clause ("不是足金", "不保证一定升值", "最低价是不可能的").
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
    "那一套", "这一套", "的广告", "的宣传", "的说法", "的话术", "是噱头", "是套路",
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
    return bool(post and post.start() - end <= NEGATION_WINDOW_CHARS)


_DENIALS = (
    *_DISBELIEF, "不能保证", "不保证", "无法保证", "不敢保证", "不承诺", "并不能", "并不会", "不能说", "不能讲",
    "不可以说", "广告法", "是假的", "不可能", "不能代替", "不能替代", "代替不了", "替代不了", "不是药",
    "没有任何功效", "没有这个功效", "不具备", "这种说法", "这个说法", "这种叫法", "哪有什么",
)  # fmt: skip
_DENIAL_SOUNDS = _SoundCues(_DENIALS)


def denies_claim(text: str) -> bool:
    """True if the utterance disowns a claim as a whole ("我们不能保证…", "广告法不让说…").

    Used for classifier alerts, which have no span that a window could negate.
    Matched on pinyin keys, like the negation cues.
    """
    return _DENIAL_SOUNDS.search(text, pinyin_key(text)) is not None


def has_claim_cue(text: str, start: int, end: int) -> bool:
    """True if an assertive cue word stands within :data:`CUE_WINDOW_CHARS` of the hit."""
    clause_start, clause_end = _clause_bounds(text, start, end)
    window = text[max(clause_start, start - CUE_WINDOW_CHARS) : start] + CLAUSE_MARK
    window += text[end : min(clause_end, end + CUE_WINDOW_CHARS)]
    return bool(_CUE_PATTERN.search(window))


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
