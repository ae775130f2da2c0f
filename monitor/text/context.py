"""Context rules applied to a lexicon hit in its utterance (normalized text).

The words, patterns and windows are data (``lexicons/_context.yaml``, validated by
:class:`ContextFile` and part of ``lexicon_version``); this module holds the rules that
read them, each a small named function compiled once by :class:`ContextRules`::

    rules = ContextRules(lexicon.context)        # once, with the lexicon
    rules.excuse(text, start, end)               # None, or the rule that drops the hit
    rules.claim_cue(text, start, end)            # the assertive cue supporting it, if any

- negation rules (``negation_before``, ``disbelief_before``, ``denial_after``): a cue
  shortly before the hit or a denial shortly after it in its clause ("不是足金",
  "不保证一定升值", "最低价是不可能的");
- disowning rules (:data:`DISOWNING_RULES`): the speaker names the claim only to refuse,
  deny, quote, question or report it ("加微信这种事我们不做", "美白?它没有那个备案");
- :meth:`ContextRules.claim_cue`: an assertive word near the hit ("绝对", "保证", "100%");
- :func:`judge_severity`: a certified attribute lowers, room category and repetition raise,
  with the explanation of each step.

Offsets are in normalized text; clauses are separated by ``,`` (see normalize.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from itertools import chain

from pydantic import BaseModel, ConfigDict, Field, field_validator

from monitor.alerts import Effect, Explanation, explanation
from monitor.room import RoomContext
from monitor.taxonomy import Category, Severity
from monitor.text.normalize import CLAUSE_MARK
from monitor.text.pinyin import pinyin_key

REPEAT_RAISE_AFTER = 2
"""A rule that already fired this many times in the room is raised one severity level."""

_A_NOT_A_NEGATORS = "不没"
"""有没有X, 是不是X: the middle character of an A-not-A question that starts the hit."""
_HIT_REFUSED_MARK = "\x01"  # 不<term>的 / 不<term> stand in the refused-words position
_HIT_MARK = "\x02"  # the term itself, repeated in the tail ("美白美白我们不说")

Word = str
Words = tuple[Word, ...]


# -- the data file ---------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Limit(_Strict):
    """A window or count with the reason for its size."""

    value: int = Field(ge=0)
    why: str = Field(min_length=4)


class Limits(_Strict):
    """Every window of the context rules (``limits`` in ``_context.yaml``)."""

    negation_chars: Limit
    negation_cue_reach_chars: Limit
    single_negator_gap_chars: Limit
    disbelief_chars: Limit
    disbelief_cue_reach_chars: Limit
    denial_after_chars: Limit
    denial_cue_reach_chars: Limit
    question_before_chars: Limit
    dismissal_before_chars: Limit
    claim_cue_chars: Limit
    alone_extra_chars: Limit
    question_extra_chars: Limit
    quote_extra_chars: Limit
    quote_list_clause_chars: Limit
    quote_list_clauses: Limit
    reported_chars: Limit
    answer_lead_chars: Limit
    wish_clauses: Limit


def _compiles(value: str | tuple[str, ...]) -> str:
    pattern = value if isinstance(value, str) else "".join(value)
    if not pattern:
        raise ValueError("empty pattern")
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from exc
    return pattern


def _words(value: tuple[str, ...]) -> tuple[str, ...]:
    if not value:
        raise ValueError("at least one word is required")
    if any(not word.strip() for word in value):
        raise ValueError("words must not be blank")
    return value


class Cues(_Strict):
    """Cue words (``cues`` in ``_context.yaml``)."""

    pre_negation: Words
    disbelief: Words
    post_negation: Words
    urging_after_negation: Words
    claim: Words
    solicitation: Words
    contact_channel: str
    utterance_denial: Words

    _check_words = field_validator(
        "pre_negation", "disbelief", "post_negation", "urging_after_negation", "claim", "solicitation",
        "utterance_denial",
    )(_words)  # fmt: skip
    _check_pattern = field_validator("contact_channel")(_compiles)


class RulePattern(_Strict):
    """One pattern of a disowning rule: a regular expression (a list is joined) and why."""

    why: str = Field(min_length=4)
    pattern: str

    _check_pattern = field_validator("pattern", mode="before")(_compiles)


class DisowningPatterns(_Strict):
    """The patterns of the disowning rules (``disowning.patterns``)."""

    preterition: RulePattern
    denial_answer: RulePattern
    bans_what_follows: RulePattern
    word_talk: RulePattern
    direct_talk: RulePattern
    standard_talk: RulePattern
    goods_asserted: RulePattern
    topic_mention: RulePattern
    dissuade: RulePattern
    reserved: RulePattern
    document_says: RulePattern
    reported: RulePattern
    someone_else: RulePattern
    condemned: RulePattern
    not_our_words: RulePattern
    wish_clause: RulePattern
    wish_after: RulePattern
    dismissals: RulePattern
    questions: RulePattern


class Disowning(_Strict):
    """Word lists and patterns of the disowning rules (``disowning``)."""

    subject: Words
    refusals: Words
    meta_refusals: Words
    meta: Words
    tail: Words
    answer_refusals: Words
    question_particles: Words
    patterns: DisowningPatterns

    _check_words = field_validator(
        "subject", "refusals", "meta_refusals", "meta", "tail", "answer_refusals", "question_particles"
    )(_words)


class ContextFile(_Strict):
    """``_context.yaml``: the cue words, disowning patterns and windows of the context rules."""

    limits: Limits
    cues: Cues
    disowning: Disowning


# -- compiled rules ------------------------------------------------------------------------------


class _SoundCues:
    """Cues matched on fuzzy pinyin keys, so that a misheard cue (步是 for 不是, 别心 for
    别信) still counts; a match must keep at least one character of the cue in place,
    so a word that only shares the sound (金子 for 禁止) does not. Single-character cues
    are left out: one syllable alone has too many innocent homophones.
    """

    def __init__(self, cues: Iterable[str]) -> None:
        self._cues_by_key: dict[str, list[str]] = {}
        for cue in cues:
            if len(cue) > 1:
                self._cues_by_key.setdefault(pinyin_key(cue), []).append(cue)
        alternation = sorted(map(re.escape, self._cues_by_key), key=len, reverse=True)
        self.pattern = re.compile("|".join(alternation))

    def finditer(self, text: str, key: str, low: int = 0, high: int | None = None) -> Iterator[re.Match[str]]:
        """Cue matches in ``key[low:high]`` (``key`` is ``pinyin_key(text)``)."""
        for match in self.pattern.finditer(key, low, len(key) if high is None else high):
            heard = text[match.start() : match.end()]
            if any(h == c for cue in self._cues_by_key[match.group()] for h, c in zip(heard, cue, strict=True)):
                yield match

    def search(self, text: str, key: str, low: int = 0, high: int | None = None) -> re.Match[str] | None:
        return next(self.finditer(text, key, low, high), None)


def _alternation(words: Iterable[str]) -> str:
    """Longest first, so a regex prefers 不能说 to 不能."""
    return "(?:" + "|".join(sorted(map(re.escape, words), key=len, reverse=True)) + ")"


def _repeated(words: Iterable[str]) -> str:
    """Any run of ``words``, tried in the file's order."""
    return "(?:" + "|".join(words) + ")*"


class _Hit:
    """A hit ``text[start:end]`` with its clause and the clause after it."""

    __slots__ = ("after", "before", "clause_end", "clause_start", "end", "extra_chars", "hit", "key", "next_clause",
                 "next_start", "start", "text")  # fmt: skip

    def __init__(self, text: str, key: str, start: int, end: int) -> None:
        self.text, self.key, self.start, self.end = text, key, start, end
        self.clause_start, self.clause_end = clause_bounds(text, start, end)
        self.hit = text[start:end]
        # Characters of the hit's clause that are not the hit (a term alone, quoted, asked).
        self.extra_chars = self.clause_end - self.clause_start - (end - start)
        self.before = text[self.clause_start : start]
        self.after = text[end : self.clause_end]
        self.next_start = self.clause_end + 1
        next_end = text.find(CLAUSE_MARK, self.next_start)
        self.next_clause = text[self.next_start :] if next_end < 0 else text[self.next_start : next_end]

    @property
    def previous_clause_start(self) -> int:
        return self.text.rfind(CLAUSE_MARK, 0, max(0, self.clause_start - 1)) + 1


def clause_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """``(start, end)`` of the clause holding ``text[start:end]``."""
    left = text.rfind(CLAUSE_MARK, 0, start) + 1
    right = text.find(CLAUSE_MARK, end)
    return left, len(text) if right < 0 else right


NEGATION_RULES = ("negation_before", "disbelief_before", "denial_after")
"""Rules that negate a hit, in the order they are tried."""
DISOWNING_RULES = (
    "a_not_a_question", "question_before", "dismissal_before", "document_read_aloud", "reserved_for_others",
    "topic_mention", "standard_read_aloud", "definition_after", "dissuasion_after", "not_our_words",
    "refusal_in_clause", "refusal_next_clause", "questioned_then_denied", "word_talk_after", "quoted_term",
    "reported_and_condemned", "wish",
)  # fmt: skip
"""Rules that disown a hit, in the order they are tried (see the ``_<name>`` methods)."""


class ContextRules:
    """The context rules of one ``_context.yaml``, compiled once. Read-only, thread-safe."""

    def __init__(self, data: ContextFile) -> None:
        self.data = data
        limits, cues, disowning = data.limits, data.cues, data.disowning
        self.limits = limits
        # The limits as plain ints: they are read for every hit.
        self.claim_cue_chars = limits.claim_cue_chars.value
        self._negation_chars = limits.negation_chars.value
        self._negation_lookback = self._negation_chars + limits.negation_cue_reach_chars.value
        self._single_negator_gap = limits.single_negator_gap_chars.value
        self._disbelief_lookback = limits.disbelief_chars.value + limits.disbelief_cue_reach_chars.value
        self._denial_after_chars = limits.denial_after_chars.value
        self._denial_lookahead = self._denial_after_chars + limits.denial_cue_reach_chars.value
        self._question_before_chars = limits.question_before_chars.value
        self._dismissal_before_chars = limits.dismissal_before_chars.value
        self._alone_extra_chars = limits.alone_extra_chars.value
        self._question_extra_chars = limits.question_extra_chars.value
        self._quote_extra_chars = limits.quote_extra_chars.value
        self._quote_list_clause_chars = limits.quote_list_clause_chars.value
        self._quote_list_clauses = limits.quote_list_clauses.value
        self._reported_chars = limits.reported_chars.value
        self._wish_clauses = limits.wish_clauses.value
        self._pre_sounds = _SoundCues(cues.pre_negation)
        self._pre_single = re.compile("|".join(map(re.escape, frozenset(c for c in cues.pre_negation if len(c) == 1))))
        self._disbelief_sounds = _SoundCues(cues.disbelief)
        self._post_sounds = _SoundCues(cues.post_negation)
        self._urging_keys = tuple(pinyin_key(u) for u in cues.urging_after_negation)
        self._claim_cue = re.compile("|".join(sorted(map(re.escape, cues.claim), key=len, reverse=True)))
        self._contact_channel = re.compile(cues.contact_channel)
        self._solicitation = re.compile("|".join(sorted(map(re.escape, cues.solicitation), key=len, reverse=True)))
        self._denial_sounds = _SoundCues((*cues.disbelief, *cues.utterance_denial))

        p = disowning.patterns
        subject, tail = _repeated(disowning.subject), _repeated(disowning.tail)
        refusal = _alternation(disowning.refusals)
        self._meta_refusals = frozenset(disowning.meta_refusals)
        self._question_particles = "".join(disowning.question_particles)
        # The term is masked in the text (_mask_hit) instead of compiled into the pattern:
        # building a pattern per term thrashed the re cache (90 % of the engine's time).
        self._refusal_after = re.compile(
            f"(?P<meta>(?:{_alternation(disowning.meta)}|{_HIT_REFUSED_MARK})*)的?{subject}"
            f"(?P<refusal>{refusal}|{_alternation(disowning.meta_refusals)})(?:{tail}|{_HIT_MARK})*"
        )
        self._next_clause_refusal = re.compile(f"{subject}{refusal}{tail}")
        self._question_refusal = re.compile(
            f"[^,]{{0,{limits.answer_lead_chars.value}}}?{subject}"
            f"(?:{'|'.join(disowning.answer_refusals)}|{refusal}){tail}"
        )
        compiled = {name: re.compile(rule.pattern) for name, rule in p}
        self._preterition = compiled["preterition"]
        self._denial_answer = compiled["denial_answer"]
        self._bans_what_follows = compiled["bans_what_follows"]
        self._word_talk = compiled["word_talk"]
        self._direct_talk = compiled["direct_talk"]
        self._standard_talk = compiled["standard_talk"]
        self._goods_asserted = compiled["goods_asserted"]
        self._topic_mention_re = compiled["topic_mention"]
        self._dissuade = compiled["dissuade"]
        self._reserved = compiled["reserved"]
        self._document_says = compiled["document_says"]
        self._reported = compiled["reported"]
        self._someone_else = compiled["someone_else"]
        self._condemned = compiled["condemned"]
        self._not_our_words_re = compiled["not_our_words"]
        self._wish_clause = compiled["wish_clause"]
        self._wish_after = compiled["wish_after"]
        self._dismissals = compiled["dismissals"]
        self._questions = compiled["questions"]
        self._rules: tuple[tuple[str, Callable[[_Hit], bool]], ...] = tuple(
            (name, getattr(self, f"_{name}")) for name in (*NEGATION_RULES, *DISOWNING_RULES)
        )

    # -- entry points ----------------------------------------------------------------------------

    def excuse(self, text: str, start: int, end: int, key: str | None = None) -> str | None:
        """The name of the first rule that negates or disowns the hit ``text[start:end]``
        (:data:`NEGATION_RULES`, :data:`DISOWNING_RULES`), or ``None`` for a claim.

        ``key`` is ``pinyin_key(text)`` when the caller has it already.
        """
        hit = _Hit(text, pinyin_key(text) if key is None else key, start, end)
        for name, rule in self._rules:
            if rule(hit):
                return name
        return None

    def is_negated(self, text: str, start: int, end: int, key: str | None = None) -> bool:
        """True if the hit ``text[start:end]`` is negated, denied or disowned (:meth:`excuse`)."""
        return self.excuse(text, start, end, key) is not None

    def claim_cue(self, text: str, start: int, end: int) -> str | None:
        """The assertive cue word within ``claim_cue_chars`` of the hit in its clause (for a
        contact channel such as 微信: an invitation word), or ``None``."""
        clause_start, clause_end = clause_bounds(text, start, end)
        window = text[max(clause_start, start - self.claim_cue_chars) : start] + CLAUSE_MARK
        window += text[end : min(clause_end, end + self.claim_cue_chars)]
        cue = self._claim_cue.search(window)
        if cue:
            return cue.group()
        if not self._contact_channel.fullmatch(text[start:end].lower()):
            return None
        invitation = self._solicitation.search(window)
        return invitation.group() if invitation else None

    def has_claim_cue(self, text: str, start: int, end: int) -> bool:
        """True if :meth:`claim_cue` finds a cue."""
        return self.claim_cue(text, start, end) is not None

    def denies_claim(self, text: str) -> bool:
        """True if the utterance disowns a claim as a whole ("我们不能保证…", "广告法不让说…").

        Used for classifier alerts, which have no span that a window could negate.
        Matched on pinyin keys, like the negation cues.
        """
        return self._denial_sounds.search(text, pinyin_key(text)) is not None

    # -- negation --------------------------------------------------------------------------------

    def _negation_before(self, h: _Hit) -> bool:
        """不是足金, 不保证升值: a cue ending within ``negation_chars`` before the hit
        (a one-character one right before it); "不要犹豫" urges and negates nothing."""
        window = self._negation_chars
        window_start = max(h.clause_start, h.start - self._negation_lookback)
        hit_key = h.key[h.start : h.end]
        cues = chain(
            self._pre_sounds.finditer(h.text, h.key, window_start, h.start),
            self._pre_single.finditer(h.text, window_start, h.start),
        )
        for cue in cues:
            if (h.key[cue.end() : h.start] + hit_key).startswith(self._urging_keys):
                continue
            allowed_gap = window if cue.end() - cue.start() > 1 else self._single_negator_gap
            if h.start - cue.end() <= allowed_gap:
                return True
        return False

    def _disbelief_before(self, h: _Hit) -> bool:
        """别信什么包治百病: a dismissal within ``disbelief_chars`` before the hit."""
        reach = self._disbelief_lookback
        return self._disbelief_sounds.search(h.text, h.key, max(h.clause_start, h.start - reach), h.start) is not None

    def _denial_after(self, h: _Hit) -> bool:
        """最低价是不可能的: a denial starting within ``denial_after_chars`` after the hit."""
        window = self._denial_after_chars
        high = min(h.clause_end, h.end + self._denial_lookahead)
        post = self._post_sounds.search(h.text, h.key, h.end, high)
        return post is not None and post.start() - h.end <= window

    # -- disowning -------------------------------------------------------------------------------

    def _a_not_a_question(self, h: _Hit) -> bool:
        """有没有优化: the hit starts inside an A-not-A question."""
        text, start = h.text, h.start
        return (
            text[start] in _A_NOT_A_NEGATORS and start > 0 and h.end > start + 1 and text[start - 1] == text[start + 1]
        )

    def _question_before(self, h: _Hit) -> bool:
        """是不是足金, 能不能升值."""
        return self._questions.search(h.before[-self._question_before_chars :]) is not None

    def _dismissal_before(self, h: _Hit) -> bool:
        """别指望它升值, 不要以为戴玉就能辟邪."""
        return self._dismissals.search(h.before[-self._dismissal_before_chars :]) is not None

    def _document_read_aloud(self, h: _Hit) -> bool:
        """证书上写的是足金, 批准的保健功能是增强免疫力."""
        return self._document_says.search(h.before) is not None

    def _reserved_for_others(self, h: _Hit) -> bool:
        """只有医疗器械才能说治疗作用."""
        return self._reserved.search(h.before) is not None

    def _topic_mention(self, h: _Hit) -> bool:
        """说到治疗啊,…"""
        return self._topic_mention_re.search(h.before) is not None

    def _standard_read_aloud(self, h: _Hit) -> bool:
        """国标规定足金的含金量…, in the hit's clause or the one before, unless the clause
        asserts the term of the goods (这个是千足金的)."""
        if self._goods_asserted.search(h.before):
            return False
        return bool(
            self._standard_talk.search(h.before)
            or (h.clause_start > 0 and self._standard_talk.search(h.text, h.previous_clause_start, h.clause_start))
        )

    def _definition_after(self, h: _Hit) -> bool:
        """足金的标准是…, 祛斑要有特证, 护身符造型的书签."""
        return self._direct_talk.search(h.after) is not None

    def _dissuasion_after(self, h: _Hit) -> bool:
        """想要美白的别拍这个."""
        return self._dissuade.search(h.after) is not None

    def _not_our_words(self, h: _Hit) -> bool:
        """…我们不这么卖, unless said anyway after (但是…)."""
        not_ours = self._not_our_words_re.search(h.text, h.end)
        return bool(not_ours and not self._preterition.search(h.text, not_ours.end()))

    def _refusal_in_clause(self, h: _Hit) -> bool:
        """X这种事我们真的不做: a refusal ends the hit's clause (a plain 没有/不敢 only
        after a word about the term), and nothing after says it anyway."""
        same = self._refusal_after.fullmatch(_mask_hit(h.after, h.hit))
        refused = same and (same.group("meta") or same.group("refusal") not in self._meta_refusals)
        return bool(refused and not self._preterition.search(h.text[h.next_start :]))

    def _refusal_next_clause(self, h: _Hit) -> bool:
        """X没有保障,我们不收: a refusal is the whole next clause."""
        refused = h.next_clause and self._next_clause_refusal.fullmatch(h.next_clause)
        return bool(refused and not self._preterition.search(h.text, h.next_start + len(h.next_clause)))

    def _questioned_then_denied(self, h: _Hit) -> bool:
        """美白?它没有那个备案: a term alone or asked about, answered by a denial."""
        questioned = h.extra_chars <= self._alone_extra_chars or (
            h.extra_chars <= self._question_extra_chars and h.text[h.clause_end - 1] in self._question_particles
        )
        if not questioned or not h.next_clause:
            return False
        denied = self._denial_answer.match(h.next_clause) or self._question_refusal.fullmatch(h.next_clause)
        return bool(denied and not self._preterition.search(h.text, h.next_start + len(h.next_clause)))

    def _word_talk_after(self, h: _Hit) -> bool:
        """…这种说法, …这两个名称: talk about the word itself."""
        return self._word_talk.search(h.after) is not None

    def _quoted_term(self, h: _Hit) -> bool:
        """A quoted term (alone in its clause, maybe in a list of quoted terms) led by a ban,
        a document, or a report condemned later; or followed by talk about the words."""
        if h.extra_chars > self._quote_extra_chars:
            return False
        text, list_clause_chars = h.text, self._quote_list_clause_chars
        first = h.clause_start
        for _ in range(self._quote_list_clauses):
            if first == 0:
                break
            lead_start = text.rfind(CLAUSE_MARK, 0, first - 1) + 1
            lead = text[lead_start : first - 1]
            if self._bans_what_follows.search(lead) or self._document_says.search(lead):
                return True
            if self._reported.search(lead) and self._condemned.search(text, h.end):
                return True
            if len(lead) > list_clause_chars:
                break
            first = lead_start
        following = h.next_start
        for _ in range(self._quote_list_clauses):
            if following > len(text):
                break
            following_end = text.find(CLAUSE_MARK, following)
            following_end = len(text) if following_end < 0 else following_end
            clause = text[following:following_end]
            if self._word_talk.search(clause) or self._direct_talk.search(clause):
                return True
            if len(clause) > list_clause_chars:
                break
            following = following_end + 1
        return False

    def _reported_and_condemned(self, h: _Hit) -> bool:
        """有人说这个是顶级的,我不这么说: someone else's claim, condemned later."""
        text, clause_start = h.text, h.clause_start
        lead_start = h.previous_clause_start
        reported = (
            self._reported.search(text, max(clause_start, h.start - self._reported_chars), h.start)
            or self._someone_else.search(h.before)
            or (
                clause_start > 0
                and text[lead_start : clause_start - 1].endswith("说")
                and self._reported.search(text, lead_start, clause_start - 1)
            )
        )
        return bool(reported and self._condemned.search(text, h.end))

    def _wish(self, h: _Hit) -> bool:
        """祝大家…财源广进; …长命百岁,这是过年的吉利话."""
        clauses_back = h.text[: h.clause_end].split(CLAUSE_MARK)[-self._wish_clauses :]
        return (
            any(self._wish_clause.match(c) for c in clauses_back) or self._wish_after.search(h.text, h.end) is not None
        )


def _mask_hit(after: str, hit: str) -> str:
    return after.replace(f"不{hit}的", _HIT_REFUSED_MARK).replace(f"不{hit}", _HIT_REFUSED_MARK).replace(hit, _HIT_MARK)


# -- severity ------------------------------------------------------------------------------------


def certified_by(context: RoomContext, category: Category, terms: Iterable[str] = ()) -> str | None:
    """The certified attribute of the room's product (a category id or a term, as listed in
    ``context.certified``) that covers a claim of ``category`` heard as ``terms``, if any."""
    if not context.certified:
        return None
    claimed = {category.value, *(t.lower() for t in terms)}
    for attribute in context.certified:
        if attribute.strip().lower() in claimed:
            return attribute.strip()
    return None


def judge_severity(
    default: Severity, *, certified: str | None, room_category: str | None, repeats: int
) -> tuple[Severity, list[Explanation]]:
    """Severity after context, with what moved it: a ``certified`` attribute -> ``info``;
    the ``room_category`` (when it is among the rule's rooms) and the :data:`REPEAT_RAISE_AFTER`
    -th repetition in the room each raise one level (an explanation only where it moved)."""
    if certified is not None:
        detail = f"认证属性 {certified}: 仅提示，交审核"
        return Severity.INFO, [explanation("certified", Effect.LOWERED, detail)]
    severity, why = default, []
    if room_category is not None and severity.raised() is not severity:
        severity = severity.raised()
        why.append(explanation("room_category", Effect.RAISED, f"直播间品类 {room_category}"))
    if repeats >= REPEAT_RAISE_AFTER and severity.raised() is not severity:
        severity = severity.raised()
        detail = f"本直播间第 {repeats + 1} 次触发"
        why.append(explanation("repetition", Effect.RAISED, detail))
    return severity, why
